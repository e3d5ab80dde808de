"""Read mmengine's JSON scalar logs; extract, plot and time their curves.

Behind ``tools/analysis_tools/analyze_logs.py``. The input is what
``LocalVisBackend`` writes to ``work_dir/<timestamp>/vis_data/``:
``scalars.json`` (or ``<timestamp>.json``, the same lines), one JSON
object per line::

    {"lr": 0.0005, "loss": 5.37, "time": 0.047, "epoch": 1, "iter": 1, "step": 1}
    {"action/frame_top1": 0.31, "data_time": 0.01, "time": 0.04, "step": 1}

Training lines carry ``iter`` (and ``epoch`` in epoch-based runs);
validation lines do not, and their ``step`` is the epoch (or, in
iteration-based runs, the iteration) they were computed after. A work
directory stands for all of its runs' ``scalars.json``, oldest first, so the
curves of a resumed run continue across its restarts.

:func:`extract_series` returns the points that :func:`plot_curves` draws.
"""
import difflib
import glob
import json
import os
import os.path as osp
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = [
    'Series', 'load_scalars', 'log_keys', 'extract_series', 'default_legend',
    'plot_curves', 'save_figure', 'train_time_stats', 'format_train_time'
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


def load_scalars(path: str) -> List[dict]:
    """The scalar lines of a JSON log, or of every run of a work directory.

    Args:
        path: A ``scalars.json`` / ``<timestamp>.json`` file, or a work
            directory: its ``<timestamp>/vis_data/scalars.json`` files are
            read in timestamp order and concatenated.

    Raises:
        FileNotFoundError: Nothing to read at ``path``.
        ValueError: A line is not a JSON object (file and line named).
    """
    if osp.isdir(path):
        files = sorted(
            glob.glob(osp.join(path, '*', 'vis_data', 'scalars.json')))
        if not files:
            raise FileNotFoundError(
                f'{path} is a directory without <timestamp>/vis_data/'
                'scalars.json; pass a work_dir of tools/train.py or a JSON '
                'log file')
        return [record for f in files for record in _read_lines(f)]
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'log {path} does not exist; expected work_dir/<timestamp>/'
            'vis_data/scalars.json (or <timestamp>.json) or a work_dir')
    return _read_lines(path)


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
    the validation lines; ``'train:time'`` / ``'val:time'`` choose. Training
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


def train_time_stats(records: Sequence[dict],
                     include_outliers: bool = False) -> Dict[str, object]:
    """Time per training iteration, overall and per epoch.

    The ``time`` of a training line is mmengine's running mean over the
    log processor's window. The first line of each epoch is left out
    unless ``include_outliers`` (or it is the epoch's only line): it
    includes starting the DataLoader workers.

    Returns:
        dict: ``average`` (s/iter), ``num_lines`` (lines averaged),
        ``epochs`` (``{epoch: mean s/iter}``, empty for iteration-based
        runs), ``slowest`` and ``fastest`` (epoch numbers, or None) and
        ``std`` (over the per-epoch means, or None).

    Raises:
        KeyError: No training line has ``time``.
    """
    lines = [r for r in _phase_lines(records, 'train') if _is_number(
        r.get('time'))]
    if not lines:
        raise KeyError('no training line has "time"; was IterTimerHook '
                       'disabled? Keys present: '
                       f'{log_keys(records)["train"]}')
    by_epoch: Dict[int, List[float]] = {}
    for r in lines:
        by_epoch.setdefault(r.get('epoch'), []).append(float(r['time']))
    if not include_outliers:
        by_epoch = {e: t[1:] if len(t) > 1 else t for e, t in by_epoch.items()}
    times = [t for ts in by_epoch.values() for t in ts]
    epochs = {e: float(np.mean(t)) for e, t in by_epoch.items()
              if e is not None}
    return dict(
        average=float(np.mean(times)),
        num_lines=len(times),
        epochs=epochs,
        slowest=max(epochs, key=epochs.get) if epochs else None,
        fastest=min(epochs, key=epochs.get) if epochs else None,
        std=float(np.std(list(epochs.values()))) if epochs else None)


def format_train_time(stats: Dict[str, object], source: str) -> str:
    """The lines ``analyze_logs.py cal_train_time`` prints."""
    lines = [
        f'-----Analyze train time of {source}-----',
        f'average iter time: {stats["average"]:.4f} s/iter '
        f'({stats["num_lines"]} logged lines)'
    ]
    epochs = stats['epochs']
    if epochs:
        slow, fast = stats['slowest'], stats['fastest']
        lines += [
            f'slowest epoch {slow}, average time is {epochs[slow]:.4f} '
            's/iter',
            f'fastest epoch {fast}, average time is {epochs[fast]:.4f} '
            's/iter',
            f'time std over epochs is {stats["std"]:.4f}'
        ]
    return '\n'.join(lines)


def save_figure(fig, out: str) -> str:
    """Write ``fig`` to ``out`` (PNG unless its suffix names another
    format matplotlib writes) and close it."""
    import matplotlib.pyplot as plt
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
