"""Read mmengine's JSON scalar logs; extract, plot and time their curves.

Behind ``tools/analysis_tools/analyze_logs.py``. The input is what
``LocalVisBackend`` writes to ``work_dir/<timestamp>/vis_data/``:
``scalars.json`` (or ``<timestamp>.json``, the same lines), one JSON
object per line::

    {"lr": 0.0005, "loss": 5.37, "time": 0.047, "epoch": 1, "iter": 1, "step": 1}
    {"action/frame_top1": 0.31, "val/data_time": 0.01, "val/time": 0.04,
     "step": 1}

Training lines carry ``iter`` (and ``epoch`` in epoch-based runs);
validation lines do not, and their ``step`` is the epoch (or, in
iteration-based runs, the iteration) they were computed after.
``PhaseLoggerHook`` names the validation timings ``val/time`` and
``val/data_time``; logs written by mmengine's ``LoggerHook`` call them
``time`` and ``data_time`` like the training ones, which ``'val:time'``
selects. A work
directory stands for all of its runs' ``scalars.json``, oldest first, so the
curves of a resumed run continue across its restarts.

:func:`extract_series` returns the points that :func:`plot_curves` draws.
"""
import difflib
import glob
import json
import os
import os.path as osp
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'Series', 'scalars_files', 'load_scalars', 'log_keys', 'extract_series',
    'default_legend',
    'plot_curves', 'save_figure', 'training_windows', 'train_time_stats',
    'format_train_time', 'default_figure_path'
]

# Keys that position a line rather than measure something.
POSITION_KEYS = ('epoch', 'iter', 'step')
PHASES = ('train', 'val')


@dataclass
class Series:
    """One curve: ``y[i]`` was logged at ``x[i]`` (``x_name`` is ``'iter'``
    or ``'epoch'``) in the ``phase`` (``'train'`` or ``'val'``) lines."""
    key: str
    phase: str
    x_name: str
    x: np.ndarray
    y: np.ndarray


def _read_lines(path: str) -> List[dict]:
    records = []
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise ValueError(f'{path}: line {lineno} is not JSON '
                                 f'({e.msg}); expected one object per '
                                 'line as LocalVisBackend writes') from None
            if not isinstance(record, dict):
                raise ValueError(f'{path}: line {lineno} is a '
                                 f'{type(record).__name__}; expected an '
                                 'object such as {"loss": 0.5, "step": 1}')
            records.append(record)
    return records


def scalars_files(path: str) -> List[str]:
    """The JSON logs :func:`load_scalars` reads for ``path``, oldest first.

    Args:
        path: A ``scalars.json`` / ``<timestamp>.json`` file; a run's
            ``<timestamp>`` directory (its ``vis_data/scalars.json``); or a
            work directory (every run's ``<timestamp>/vis_data/
            scalars.json``, in timestamp order, so a resumed run's curves
            continue across its restarts).

    Raises:
        FileNotFoundError: Nothing to read at ``path``.
    """
    if osp.isdir(path):
        files = sorted(glob.glob(osp.join(path, 'vis_data', 'scalars.json'))
                       or glob.glob(
                           osp.join(path, '*', 'vis_data', 'scalars.json')))
        if not files:
            raise FileNotFoundError(
                f'{path} is a directory without <timestamp>/vis_data/'
                'scalars.json; pass a work_dir of tools/train.py, one of its '
                '<timestamp> run directories or a JSON log file')
        return files
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'log {path} does not exist; expected work_dir/<timestamp>/'
            'vis_data/scalars.json (or <timestamp>.json) or a work_dir')
    return [path]


def load_scalars(path: str) -> List[dict]:
    """The scalar lines of a JSON log, or of every run of a work directory
    (:func:`scalars_files`), concatenated oldest first.

    Raises:
        FileNotFoundError: Nothing to read at ``path``.
        ValueError: A line is not a JSON object (file and line named).
    """
    return [record for f in scalars_files(path) for record in _read_lines(f)]


def _phase_lines(records: Sequence[dict], phase: str) -> List[dict]:
    if phase == 'train':
        return [r for r in records if 'iter' in r]
    return [r for r in records if 'iter' not in r and 'step' in r]


def log_keys(records: Sequence[dict]) -> Dict[str, List[str]]:
    """``{'train': [...], 'val': [...]}``: the numeric keys each kind of
    line has, sorted."""
    keys = {}
    for phase in PHASES:
        found = set()
        for record in _phase_lines(records, phase):
            found.update(k for k, v in record.items()
                         if k not in POSITION_KEYS and _is_number(v))
        keys[phase] = sorted(found)
    return keys


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse_key(key: str):
    """``'val:time'`` -> ``('val', 'time')``; ``'loss'`` -> ``(None,
    'loss')``."""
    phase, sep, name = key.partition(':')
    if sep and phase in PHASES:
        return phase, name
    return None, key


def extract_series(records: Sequence[dict], key: str,
                   source: str = 'the log') -> Series:
    """The curve of ``key``.

    A bare key is taken from the training lines if they have it, else from
    the validation lines; ``'train:time'`` / ``'val:time'`` choose in logs
    where both have the key (written without ``PhaseLoggerHook``). Training
    points are placed at ``iter``, validation points at ``step`` (the epoch
    in epoch-based runs). When two lines share a position (a run resumed
    from an earlier checkpoint than its last log), the later one is kept.

    Args:
        records: From :func:`load_scalars`.
        key: A logged scalar name, e.g. ``'loss'``, ``'lr'``,
            ``'action/frame_top1'``.
        source: How to name the log in errors.

    Raises:
        KeyError: No line has ``key``; the message lists the keys present.
    """
    phase, name = _parse_key(key)
    keys = log_keys(records)
    asked = phase
    if phase is None:
        phase = 'train' if name in keys['train'] else 'val'
    if name not in keys[phase]:
        close = difflib.get_close_matches(
            name, keys[asked] if asked else keys['train'] + keys['val'], 3)
        hint = f' Did you mean {", ".join(close)}?' if close else ''
        present = '; '.join(f'{p}: {", ".join(keys[p]) or "(none)"}'
                            for p in PHASES)
        raise KeyError(f'{source} has no {asked + " " if asked else ""}key '
                       f'{name!r}.{hint} Keys present: {present}')
    lines = _phase_lines(records, phase)
    if phase == 'train':
        x_name, x_key = 'iter', 'iter'
    else:
        epoch_based = any('epoch' in r for r in _phase_lines(records, 'train'))
        x_name, x_key = ('epoch' if epoch_based else 'iter'), 'step'
    points = {}
    for record in lines:
        if _is_number(record.get(name)):
            points[record[x_key]] = float(record[name])
    xs = sorted(points)
    return Series(
        key=name,
        phase=phase,
        x_name=x_name,
        x=np.asarray(xs),
        y=np.asarray([points[x] for x in xs], dtype=np.float64))


def default_legend(path: str) -> str:
    """The work dir's name for ``work_dir/<timestamp>/vis_data/*.json`` (or
    a work dir), else the path."""
    path = osp.normpath(path)
    if osp.isdir(path):
        return osp.basename(path)
    parts = path.split(osp.sep)
    if len(parts) >= 4 and parts[-2] == 'vis_data':
        return parts[-4] or path
    return path


def plot_curves(logs: Sequence[str],
                keys: Sequence[str],
                legend: Optional[Sequence[str]] = None,
                title: Optional[str] = None,
                layout: str = 'subplots'):
    """Plot ``keys`` of every log with matplotlib (Agg).

    Args:
        logs: JSON log files or work directories (:func:`load_scalars`).
        keys: Scalars to plot (:func:`extract_series`).
        legend: One name per log (default :func:`default_legend`).
        title: Figure title.
        layout: ``'subplots'`` (one axes per key, stacked) or ``'overlay'``
            (every key in one axes; they must share their x axis).

    Returns:
        tuple: the matplotlib ``Figure`` and ``{(log, key): Series}`` of
        everything drawn.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    if not keys:
        raise ValueError('no keys to plot; pass e.g. --keys loss lr')
    if layout not in ('subplots', 'overlay'):
        raise ValueError(f"layout={layout!r}: expected 'subplots' or "
                         "'overlay'")
    if legend is None:
        legend = [default_legend(log) for log in logs]
    if len(legend) != len(logs):
        raise ValueError(f'{len(legend)} legend names for {len(logs)} logs; '
                         'give one per log')
    drawn = {}
    for log in logs:
        records = load_scalars(log)
        for key in keys:
            drawn[(log, key)] = extract_series(records, key, source=log)
    if layout == 'overlay':
        x_names = {s.x_name for s in drawn.values()}
        if len(x_names) > 1:
            raise ValueError(
                f'keys {list(keys)} are logged against different axes '
                f'({", ".join(sorted(x_names))}); plot them as subplots')
    n_axes = len(keys) if layout == 'subplots' else 1
    fig, axes = plt.subplots(
        n_axes, 1, figsize=(8, 3 * n_axes), squeeze=False)
    for k, key in enumerate(keys):
        ax = axes[k if layout == 'subplots' else 0, 0]
        for log, name in zip(logs, legend):
            series = drawn[(log, key)]
            label = name if layout == 'subplots' else f'{name}: {key}'
            ax.plot(
                series.x,
                series.y,
                marker='o' if series.phase == 'val' else None,
                markersize=4,
                label=label)
            ax.set_xlabel(series.x_name)
        ax.set_ylabel(key if layout == 'subplots' else 'value')
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize='small')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig, drawn


def training_windows(records: Sequence[dict]) -> List[Tuple[dict, int]]:
    """The training lines in iteration order, each with the number of
    iterations it stands for.

    A training line's ``time`` and ``data_time`` are means over the log
    processor's window, ending at the line's ``iter``; the line stands for
    the iterations since the previous training line (with
    ``ignore_last=False``, as hvlm's configs set, the last line of an epoch
    is logged, so no window spans two epochs). A line logged again by a
    resumed run replaces the earlier one.

    Returns:
        list: ``(line, iterations)`` pairs.
    """
    by_iter = {}
    for record in _phase_lines(records, 'train'):
        by_iter[record['iter']] = record
    windows, previous = [], 0
    for it in sorted(by_iter):
        windows.append((by_iter[it], it - previous))
        previous = it
    return windows


def _weighted_time(windows: Sequence[Tuple[dict, int]]) -> Tuple[float, int]:
    """(seconds, iterations) of ``windows``."""
    return (sum(float(r['time']) * n for r, n in windows),
            sum(n for _, n in windows))


def train_time_stats(records: Sequence[dict],
                     include_outliers: bool = False) -> Dict[str, object]:
    """Time per training iteration, overall and per epoch.

    Every logged window counts, weighted by the iterations it stands for
    (:func:`training_windows`): an epoch's time is the sum over its windows
    of ``time`` x iterations. The overall average leaves out each epoch's
    first window unless ``include_outliers`` (or it is the epoch's only
    one): it includes starting the DataLoader workers. The per-epoch
    figures always hold all of the epoch's windows.

    Returns:
        dict: ``average`` (s/iter), ``num_iters`` and ``num_windows`` (what
        the average is over), ``epochs`` (``{epoch: {'s_per_iter',
        'seconds', 'iters', 'windows'}}``, empty for iteration-based runs),
        ``slowest`` and ``fastest`` (epoch numbers, or None) and ``std``
        (of the epochs' s/iter, or None).

    Raises:
        KeyError: No training line has ``time``.
    """
    windows = [(r, n) for r, n in training_windows(records)
               if _is_number(r.get('time'))]
    if not windows:
        raise KeyError('no training line has "time"; was IterTimerHook '
                       'disabled? Keys present: '
                       f'{log_keys(records)["train"]}')
    by_epoch: Dict[object, List[Tuple[dict, int]]] = {}
    for r, n in windows:
        by_epoch.setdefault(r.get('epoch'), []).append((r, n))
    averaged = []
    for epoch_windows in by_epoch.values():
        skip = not include_outliers and len(epoch_windows) > 1
        averaged += epoch_windows[1:] if skip else epoch_windows
    seconds, iters = _weighted_time(averaged)
    epochs = {}
    for epoch, epoch_windows in by_epoch.items():
        if epoch is None:
            continue
        epoch_seconds, epoch_iters = _weighted_time(epoch_windows)
        epochs[epoch] = dict(
            s_per_iter=epoch_seconds / epoch_iters,
            seconds=epoch_seconds,
            iters=epoch_iters,
            windows=len(epoch_windows))
    per_iter = {e: v['s_per_iter'] for e, v in epochs.items()}
    return dict(
        average=seconds / iters,
        num_iters=iters,
        num_windows=len(averaged),
        epochs=epochs,
        slowest=max(per_iter, key=per_iter.get) if epochs else None,
        fastest=min(per_iter, key=per_iter.get) if epochs else None,
        std=float(np.std(list(per_iter.values()))) if epochs else None)


def format_train_time(stats: Dict[str, object], source: str,
                      include_outliers: bool = False) -> str:
    """The lines ``analyze_logs.py cal_train_time`` prints."""
    left_out = ('every logged window' if include_outliers else
                "each epoch's first window, which starts the DataLoader "
                'workers, left out; --include-outliers keeps it')
    lines = [
        f'-----Analyze train time of {source}-----',
        f'average iter time: {stats["average"]:.4f} s/iter over '
        f'{stats["num_iters"]} iterations in {stats["num_windows"]} logged '
        f'windows ({left_out})'
    ]
    epochs = stats['epochs']
    if epochs:
        lines.append('per epoch, from all its logged windows:')
        lines += [
            f'  epoch {e}: {v["s_per_iter"]:.4f} s/iter, {v["iters"]} '
            f'iterations, {v["seconds"]:.1f} s ({v["windows"]} windows)'
            for e, v in sorted(epochs.items())
        ]
        slow, fast = stats['slowest'], stats['fastest']
        lines += [
            f'slowest epoch {slow}, average time is '
            f'{epochs[slow]["s_per_iter"]:.4f} s/iter',
            f'fastest epoch {fast}, average time is '
            f'{epochs[fast]["s_per_iter"]:.4f} s/iter',
            f'time std over epochs is {stats["std"]:.4f}'
        ]
    return '\n'.join(lines)


def default_figure_path(log: str, keys: Sequence[str]) -> str:
    """Where ``plot_curve`` writes without ``--out``: the work dir of
    ``log`` (the directory itself, or the one above
    ``<timestamp>/vis_data/`` for a JSON log there, else the log's folder),
    as ``curves_<keys>.png``."""
    log = osp.normpath(log)
    if osp.isdir(log):
        work_dir = log
    else:
        folder = osp.dirname(log)
        if osp.basename(folder) == 'vis_data':
            work_dir = osp.dirname(osp.dirname(folder))
        else:
            work_dir = folder
    name = '_'.join(re.sub(r'[^A-Za-z0-9_.-]+', '-', k) for k in keys)
    return osp.join(work_dir, f'curves_{name}.png')


def save_figure(fig, out: str) -> str:
    """Write ``fig`` to ``out`` (PNG unless its suffix names another
    format matplotlib writes) and close it."""
    import matplotlib.pyplot as plt
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
