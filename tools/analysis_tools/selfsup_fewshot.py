"""Few-label fine-tuning from SimCLR against random init, and ablations.

    python tools/train.py configs/selfsup/simclr_hvit_demo.py \
        --work-dir work_dirs/simclr_hvit_demo
    python tools/analysis_tools/selfsup_fewshot.py \
        --ssl-checkpoint work_dirs/simclr_hvit_demo/epoch_50.pth \
        --seeds 0 1 2 --work-dir work_dirs/selfsup_fewshot

Each cell (arm, seed) runs tools/train.py on the fine-tuning config with
--seed and shot_seed set to the seed, then tools/test.py on its last
checkpoint with and without --tta: the same mains and arguments as those
commands (--dry-run prints them), called in this process so that torch and
hvlm are imported once. A cell whose results exist is skipped (a killed
sweep resumes). Prints test accuracy per arm (mean +- sample std over the
seeds), each arm's gain over the baseline arm with its standard errors,
and writes <work-dir>/summary.json. Arms: see
hvlm/analysis/selfsup_fewshot.py (random, simclr, simclr_no_ema,
simclr_no_mix, simclr_ce).
"""
import argparse
import importlib.util
import json
import os
import os.path as osp
import shlex
import sys

from hvlm.analysis.seed_summary import mean_std, read_test_metrics
from hvlm.analysis.selfsup_fewshot import eval_argv, gain, plan

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))


def tool_main(name):
    spec = importlib.util.spec_from_file_location(
        f'hvlm_tool_{name}', osp.join(TOOLS, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def last_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--ssl-checkpoint', required=True)
    parser.add_argument('--config',
                        default='configs/classification/hvit_demo.py')
    parser.add_argument('--arms', nargs='+', default=['random', 'simclr'])
    parser.add_argument('--baseline', default='random',
                        help='arm the gains are measured against')
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--work-dir', default='work_dirs/selfsup_fewshot')
    parser.add_argument('--cfg-options', nargs='*', default=[],
                        help='extra key=value options for every run')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the commands, run nothing')
    args = parser.parse_args(argv)
    runs = plan(args.arms, args.seeds, args.ssl_checkpoint, args.work_dir,
                args.config, args.cfg_options)
    if args.dry_run:
        for run in runs:
            ckpt = osp.join(run['work_dir'], 'epoch_N.pth')
            print(shlex.join(['python', 'tools/train.py', *run['train']]))
            for tta in (False, True):
                print(shlex.join(['python', 'tools/test.py',
                                  *eval_argv(run, ckpt, tta)]))
        return 0
    if not osp.isfile(args.ssl_checkpoint):
        parser.error(f'--ssl-checkpoint {args.ssl_checkpoint}: no such file')
    os.makedirs(args.work_dir, exist_ok=True)
    train, test = tool_main('train'), tool_main('test')
    results = {}
    for run in runs:
        path = osp.join(run['work_dir'], 'result.json')
        if not osp.isfile(path):
            train(run['train'])
            ckpt = last_checkpoint(run['work_dir'])
            result = {}
            for tta in (False, True):
                test(eval_argv(run, ckpt, tta))
                out = osp.join(run['work_dir'], 'test_tta' if tta else 'test')
                result['tta' if tta else 'plain'] = read_test_metrics(
                    out, 'cls/')['cls/accuracy']
            with open(path, 'w') as f:
                json.dump(result, f)
        with open(path) as f:
            results.setdefault(run['arm'], {})[run['seed']] = json.load(f)
    summary = {}
    lines = [f'{"arm":<16}{"test":>16}{"test --tta":>16}   gain over '
             f'{args.baseline} (--tta): mean, 2 SE paired / unpaired']
    for arm, per_seed in results.items():
        row = {}
        for mode in ('plain', 'tta'):
            acc = {s: r[mode] for s, r in per_seed.items()}
            row[mode] = dict(mean_std(list(acc.values())), per_seed=acc)
            base = results.get(args.baseline)
            if base is not None and arm != args.baseline:
                row[mode]['gain'] = gain(
                    acc, {s: r[mode] for s, r in base.items()})
        summary[arm] = row
        cell = ''.join(f'{row[m]["mean"]:>10.3f}±{row[m]["std"]:.3f}'
                       for m in ('plain', 'tta'))
        g = row['tta'].get('gain')
        extra = (f'   {g["gain"]:+.3f}, {2 * g["se_paired"]:.3f} / '
                 f'{2 * g["se_unpaired"]:.3f}' if g else '')
        lines.append(f'{arm:<16}{cell}{extra}')
    with open(osp.join(args.work_dir, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    sys.exit(main())
