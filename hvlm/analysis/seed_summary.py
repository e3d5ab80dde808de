"""Mean and spread of test metrics over runs (the few-shot protocol's
seeds), read from the runs' logs."""
import glob
import math
import os.path as osp
import re
import statistics
from typing import Dict, List, Sequence

# "Epoch(test) [25/25]    recog/top1: 0.8123  recog/top5: 0.9611  ..."
_PAIR = re.compile(r'([\w/.@-]+): (-?[0-9.]+(?:e-?\d+)?)')


def read_test_metrics(work_dir: str,
                      prefix: str = 'recog/') -> Dict[str, float]:
    """Metrics starting with ``prefix`` of the last ``Epoch(test)`` summary
    line in the newest ``*.log`` under ``work_dir`` (tools/test.py's
    output directory)."""
    logs = sorted(glob.glob(osp.join(work_dir, '**', '*.log'),
                            recursive=True), key=osp.getmtime)
    for path in reversed(logs):
        with open(path, encoding='utf-8', errors='replace') as f:
            lines = [line for line in f if 'Epoch(test)' in line
                     and prefix in line]
        if lines:
            return {k: float(v) for k, v in _PAIR.findall(lines[-1])
                    if k.startswith(prefix)}
    raise FileNotFoundError(
        f'no "Epoch(test)" line with {prefix!r} metrics in a *.log under '
        f'{work_dir}; run tools/test.py with --work-dir {work_dir}')


def mean_std(values: Sequence[float]) -> Dict[str, float]:
    """Mean, sample standard deviation (0 for one value) and count."""
    return dict(mean=statistics.fmean(values),
                std=statistics.stdev(values) if len(values) > 1 else 0.0,
                n=len(values))


def summarize_runs(runs: Sequence[Dict[str, float]]) -> Dict[str, dict]:
    """``metric -> dict(mean, std, n)`` (:func:`mean_std`) over the runs
    that report it."""
    names: List[str] = sorted({k for run in runs for k in run})
    return {name: mean_std([run[name] for run in runs if name in run])
            for name in names}


def format_summary(summary: Dict[str, dict], scale: float = 100.) -> str:
    lines = [f'{"metric":<26}{"mean":>9}{"std":>9}{"runs":>6}']
    for name, s in summary.items():
        mean, std = s['mean'] * scale, s['std'] * scale
        if math.isfinite(mean):
            lines.append(f'{name:<26}{mean:>9.2f}{std:>9.2f}{s["n"]:>6}')
    return '\n'.join(lines)
