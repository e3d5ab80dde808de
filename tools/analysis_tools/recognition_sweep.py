"""Few-shot recognition over methods x K x seeds, beside zero-shot.

    python tools/analysis_tools/recognition_sweep.py \
        --clip work_dirs/vtc_holdout/hf_export \
        --shots 2 4 8 16 --seeds 0 1 2 --work-dir work_dirs/recog_sweep

Each cell trains configs/recognition/<method>_<dataset>_8shot.py with
K_train=K, few_shot_seed=seed and randomness.seed=seed, tests its best
checkpoint on the test split, and is skipped when its test log exists (a
killed sweep resumes). Prints top-1 and mean class accuracy tables (mean
+- sample std over the seeds, %) and writes <work-dir>/summary.json.
"""
import argparse
import os
import os.path as osp
import shlex
import sys

from hvlm.analysis.recognition_sweep import (METHODS, commands, execute, plan,
                                             table, write_summary)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--clip', required=True,
                        help='local CLIP directory (model.pretrained)')
    parser.add_argument('--methods', nargs='+', default=list(METHODS))
    parser.add_argument('--shots', nargs='+', type=int, default=[2, 4, 8, 16])
    parser.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    parser.add_argument('--dataset', default='hvlm-demo')
    parser.add_argument('--work-dir', default='work_dirs/recog_sweep')
    parser.add_argument('--cfg-options', nargs='*', default=[],
                        help='extra key=value options for every run')
    parser.add_argument('--no-zero-shot', action='store_true',
                        help='leave zero-shot out (e.g. in a second sweep '
                        'sharing the work dir)')
    parser.add_argument('--dry-run', action='store_true',
                        help='print the commands, run nothing')
    args = parser.parse_args(argv)
    if not osp.isdir(args.clip):
        parser.error(f'--clip {args.clip}: no such directory')
    runs = plan(args.methods, args.shots, args.seeds, args.clip,
                args.work_dir, args.dataset, cfg_options=args.cfg_options,
                zero_shot=not args.no_zero_shot)
    if args.dry_run:
        for run in runs:
            for cmd in commands(run):
                print(shlex.join(cmd))
        return 0
    os.makedirs(args.work_dir, exist_ok=True)
    results = execute(runs)
    write_summary(results, osp.join(args.work_dir, 'summary.json'))
    for metric in ('recog/top1', 'recog/mean_class_acc'):
        print(f'\n{metric} on the test split (%, mean ± std over seeds '
              f'{args.seeds}):\n')
        print(table(results, metric))
    return 0 if all(r['metrics'] for r in results) else 1


if __name__ == '__main__':
    sys.exit(main())
