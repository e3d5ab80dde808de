"""The few-shot protocol of issue 14 as one resumable command: every
prompt learner (and the linear probe) trained with K videos per class for
several seeds, each tested on the test split, beside zero-shot; the table
is mean and sample standard deviation over the seeds.

Each run is an ordinary ``tools/train.py`` then ``tools/test.py`` of the
method's config (``configs/recognition/<method>_<dataset>_8shot.py``, or
``_16shot.py``) with ``K_train``, ``few_shot_seed`` and ``randomness.seed``
set (``--dataset ucf101`` picks the UCF-101 split-1 configs), so any cell
of the table can be rerun by hand with the command the sweep prints. A run
whose test log already holds metrics is not run again: a killed sweep
continues where it stopped.
"""
import glob
import json
import os.path as osp
import shlex
import subprocess
import sys
from typing import Callable, Dict, List, Optional, Sequence

from .seed_summary import read_test_metrics, summarize_runs

METHODS = ('video_coop', 'dual_coop', 'vidop', 'vilt', 'vita', 'stt',
           'linear_probe')


def method_config(config_dir: str, method: str, dataset: str) -> str:
    """``<method>_<dataset>_8shot.py`` or ``..._16shot.py`` (the sweep
    sets K itself)."""
    for shots in ('8shot', '16shot'):
        path = osp.join(config_dir, f'{method}_{dataset}_{shots}.py')
        if osp.isfile(path):
            return path
    raise FileNotFoundError(
        f'recognition sweep: no config {method}_{dataset}_8shot.py or '
        f'_16shot.py in {config_dir} for method {method!r} on {dataset!r}; '
        f'known methods: {", ".join(METHODS)}')


def _metrics_or_none(work_dir: str) -> Optional[Dict[str, float]]:
    try:
        return read_test_metrics(work_dir)
    except FileNotFoundError:
        return None


def _best_checkpoint(work_dir: str) -> str:
    found = sorted(glob.glob(osp.join(work_dir, 'best_*.pth')),
                   key=osp.getmtime)
    if not found:
        found = sorted(glob.glob(osp.join(work_dir, 'epoch_*.pth')),
                       key=osp.getmtime)
    if not found:
        raise FileNotFoundError(
            f'recognition sweep: training wrote no checkpoint in {work_dir}')
    return found[-1]


def plan(methods: Sequence[str], shots: Sequence[int], seeds: Sequence[int],
         clip: str, work_dir: str, dataset: str = 'hvlm-demo',
         config_dir: str = 'configs/recognition',
         cfg_options: Sequence[str] = (),
         zero_shot: bool = True) -> List[dict]:
    """One entry per (method, K, seed), plus one zero-shot entry (it has no
    training and no randomness) unless ``zero_shot=False``. Each holds the
    config, its work dirs and the ``--cfg-options`` of its training and
    test."""
    runs = []
    zero_shot_config = osp.join(config_dir, f'zero_shot_{dataset}.py')
    if zero_shot and osp.isfile(zero_shot_config):
        runs.append(dict(method='zero_shot', shot=0, seed=None,
                         config=zero_shot_config, train_dir=None,
                         test_dir=osp.join(work_dir, 'zero_shot'),
                         options=[f'model.pretrained={clip}',
                                  *cfg_options]))
    for method in methods:
        config = method_config(config_dir, method, dataset)
        for shot in shots:
            for seed in seeds:
                run_dir = osp.join(work_dir, method, f'{shot}shot_seed{seed}')
                runs.append(dict(
                    method=method, shot=int(shot), seed=int(seed),
                    config=config, train_dir=run_dir,
                    test_dir=osp.join(run_dir, 'test'),
                    options=[f'model.pretrained={clip}',
                             f'K_train={int(shot)}',
                             f'few_shot_seed={int(seed)}',
                             f'randomness.seed={int(seed)}', *cfg_options]))
    return runs


def commands(run: dict, checkpoint: str = '<best checkpoint>') -> List[list]:
    """The tools/train.py and tools/test.py command lines of one run."""
    py = sys.executable
    out = []
    if run['train_dir'] is not None:
        out.append([py, 'tools/train.py', run['config'], '--work-dir',
                    run['train_dir'], '--cfg-options', *run['options']])
        test_ckpt = checkpoint
    else:
        test_ckpt = 'none'
    out.append([py, 'tools/test.py', run['config'], test_ckpt, '--work-dir',
                run['test_dir'], '--cfg-options', *run['options']])
    return out


def execute(runs: Sequence[dict],
            call: Callable[[list], int] = subprocess.call,
            log: Callable[[str], None] = print) -> List[dict]:
    """Run what has no test metrics yet; return each run with its
    ``metrics`` (``None`` where a command failed, which is reported and
    does not stop the sweep)."""
    done = []
    for i, run in enumerate(runs, 1):
        metrics = _metrics_or_none(run['test_dir'])
        tag = (f'[{i}/{len(runs)}] {run["method"]} K={run["shot"]} '
               f'seed={run["seed"]}')
        if metrics is None:
            train_cmd = commands(run)[0] if run['train_dir'] else None
            ok = True
            if train_cmd is not None:
                log(f'{tag}: {shlex.join(train_cmd)}')
                ok = call(train_cmd) == 0
            if ok:
                ckpt = (_best_checkpoint(run['train_dir'])
                        if run['train_dir'] else 'none')
                test_cmd = commands(run, ckpt)[-1]
                log(f'{tag}: {shlex.join(test_cmd)}')
                ok = call(test_cmd) == 0
            metrics = _metrics_or_none(run['test_dir']) if ok else None
            if metrics is None:
                where = run['train_dir'] or run['test_dir']
                log(f'{tag}: FAILED (see {where})')
        else:
            log(f'{tag}: done before, {run["test_dir"]}')
        done.append(dict(run, metrics=metrics))
    return done


def table(results: Sequence[dict], metric: str = 'recog/top1') -> str:
    """Markdown table: a row per method, a column per K, each cell the mean
    +- sample standard deviation over the seeds in percent (with the number
    of runs where fewer than all finished)."""
    shots = sorted({r['shot'] for r in results if r['shot']})
    seeds = {r['seed'] for r in results if r['seed'] is not None}
    header = '| method | ' + ' | '.join(f'K={k}' for k in shots) + ' |'
    lines = [header, '|' + ' --- |' * (len(shots) + 1)]
    methods = list(dict.fromkeys(r['method'] for r in results))
    for method in methods:
        cells = []
        for shot in (shots if method != 'zero_shot' else [0]):
            runs = [r['metrics'] for r in results if r['method'] == method
                    and r['shot'] == shot and r['metrics']
                    and metric in r['metrics']]
            if not runs:
                cells.append('—')
                continue
            s = summarize_runs([{metric: m[metric]} for m in runs])[metric]
            cell = f'{100 * s["mean"]:.1f}'
            if method != 'zero_shot':
                cell += f' ± {100 * s["std"]:.1f}'
                if s['n'] < len(seeds):
                    cell += f' ({s["n"]} runs)'
            cells.append(cell)
        if method == 'zero_shot':
            cells = cells * len(shots)
        lines.append(f'| {method} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def write_summary(results: Sequence[dict], path: str) -> None:
    with open(path, 'w', encoding='utf-8') as f:
        json.dump([{k: r[k] for k in ('method', 'shot', 'seed', 'config',
                                      'test_dir', 'metrics')}
                   for r in results], f, indent=1)
