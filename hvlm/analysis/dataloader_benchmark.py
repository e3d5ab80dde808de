"""Clips per second of a config's training DataLoader, and the share of a
finished run's step time spent waiting for data.

``tools/analysis_tools/benchmark_dataloader.py`` is the CLI. Two questions,
one answer each:

* :func:`benchmark_dataloader`: how fast can the loader deliver? The
  config's ``train_dataloader`` is built by ``HVLMRunner.build_dataloader``
  (the sampler, collate function, worker seeding and generator of a real
  run) once per worker count, real videos are decoded, and batches are
  timed as the training loop would pull them. The first batches pay for
  starting the workers and filling their prefetch queues: they are timed
  and reported apart from the steady-state rate.
* :func:`data_time_share`: was the loader the bottleneck of a real run?
  mmengine's ``IterTimerHook`` logs ``data_time`` (waiting for the batch)
  and ``time`` (the whole iteration, the wait included) of every training
  iteration, averaged over the logging window, into
  ``<run>/vis_data/scalars.json``; their ratio over every run of a work
  dir is the share of training time lost to data loading.
"""
import copy
import statistics
import time
from typing import Dict, List, Sequence

import torch

from .log_curves import load_scalars, scalars_files, training_windows

__all__ = [
    'benchmark_dataloader', 'format_dataloader_benchmark',
    'data_time_share', 'format_data_time_share'
]


def _clips_in(batch: dict) -> int:
    """Clips in a collated batch (``inputs``: tensors
    ``[num_clips, C, T, H, W]``, one per video)."""
    inputs = batch.get('inputs') if isinstance(batch, dict) else None
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0] * inputs.shape[1]) if inputs.dim() == 6 \
            else int(inputs.shape[0])
    return sum(int(t.shape[0]) for t in inputs or ())


def time_loader(loader_cfg: dict,
                num_workers: int,
                num_batches: int,
                warmup_batches: int = 1,
                seed: int = 0) -> Dict[str, object]:
    """Build the loader with ``num_workers`` workers and time its batches.

    Args:
        loader_cfg (dict): A ``train_dataloader`` config.
        num_workers (int): DataLoader workers (0: load in this process).
        num_batches (int): Batches timed after the warm-up ones.
        warmup_batches (int): First batches, timed apart (worker start-up).
        seed (int): The run's seed (sampler order, worker seeds).

    Returns:
        dict: ``num_workers``, ``first_batches_s`` (the warm-up batches'
        time, worker start-up included), ``batches`` and ``clips`` (timed),
        ``seconds``, ``batches_per_s``, ``clips_per_s``, ``batch_ms_median``
        and ``note`` (set when the epoch ended before ``num_batches``).
    """
    from hvlm.engine.runner import HVLMRunner

    cfg = copy.deepcopy(dict(loader_cfg))
    cfg['num_workers'] = num_workers
    if num_workers == 0:
        cfg['persistent_workers'] = False  # torch refuses it without workers
        cfg.pop('prefetch_factor', None)
    loader = HVLMRunner.build_dataloader(cfg, seed=seed)
    start = time.perf_counter()
    batches = iter(loader)
    first_s, per_batch, clips, note = None, [], 0, ''
    for i in range(warmup_batches + num_batches):
        try:
            batch = next(batches)
        except StopIteration:
            note = (f'the epoch has {i} batches, fewer than warm-up '
                    f'{warmup_batches} + {num_batches}')
            break
        now = time.perf_counter()
        if i < warmup_batches:
            first_s = now - start
        else:
            per_batch.append(now - start)
            clips += _clips_in(batch)
        start = now
    del batches, loader  # stops the workers
    if not per_batch:
        raise ValueError(
            f'num_workers={num_workers}: no batch left to time after '
            f'{warmup_batches} warm-up batch(es) ({note or "empty loader"}); '
            'lower --warmup-batches or use a larger dataset')
    seconds = sum(per_batch)
    return dict(
        num_workers=num_workers,
        first_batches_s=first_s,
        batches=len(per_batch),
        clips=clips,
        seconds=seconds,
        batches_per_s=len(per_batch) / seconds,
        clips_per_s=clips / seconds,
        batch_ms_median=statistics.median(per_batch) * 1e3,
        note=note)


def benchmark_dataloader(loader_cfg: dict,
                         num_workers: Sequence[int] = (0, 1, 2),
                         num_batches: int = 20,
                         warmup_batches: int = 1,
                         seed: int = 0,
                         log=None) -> Dict[str, object]:
    """:func:`time_loader` for every worker count; 0 workers (loading in
    the training process) is the baseline of ``speedup_vs_0`` and is always
    measured, first.

    Returns:
        dict: ``rows`` (one per worker count) and the settings used.
    """
    if num_batches < 1 or warmup_batches < 0:
        raise ValueError(f'num_batches={num_batches} must be >= 1 and '
                         f'warmup_batches={warmup_batches} >= 0')
    if any(w < 0 for w in num_workers):
        raise ValueError(f'num_workers={list(num_workers)} must be >= 0')
    rows: List[Dict[str, object]] = []
    for workers in sorted(set(num_workers) | {0}):
        row = time_loader(loader_cfg, workers, num_batches, warmup_batches,
                          seed)
        row['speedup_vs_0'] = row['clips_per_s'] / rows[0]['clips_per_s'] \
            if rows else 1.0
        rows.append(row)
        if log is not None:
            log(_format_row(row))
    return dict(
        rows=rows,
        batch_size=loader_cfg.get('batch_size'),
        num_batches=num_batches,
        warmup_batches=warmup_batches,
        torch_threads=torch.get_num_threads())


_HEADER = ('| workers | first batch(es) (s) | batches timed | batch ms '
           '(median) | batches/s | clips/s | vs 0 workers |')


def _format_row(row: Dict[str, object]) -> str:
    first = row['first_batches_s']
    return (f"| {row['num_workers']} | "
            f"{'-' if first is None else f'{first:.2f}'} | "
            f"{row['batches']} | {row['batch_ms_median']:.1f} | "
            f"{row['batches_per_s']:.2f} | {row['clips_per_s']:.1f} | "
            f"{row['speedup_vs_0']:.2f}x |"
            + (f" {row['note']}" if row['note'] else ''))


def format_dataloader_benchmark(result: Dict[str, object]) -> str:
    """A Markdown table of :func:`benchmark_dataloader`'s result; the
    0-worker baseline is its first row."""
    return '\n'.join([
        f"batch size {result['batch_size']}, first "
        f"{result['warmup_batches']} batch(es) timed apart (worker "
        f"start-up), then {result['num_batches']} batches",
        '', _HEADER, '|---|---|---|---|---|---|---|'
    ] + [_format_row(r) for r in result['rows']])


def data_time_share(path: str, target: float = 0.1) -> Dict[str, object]:
    """Share of training time spent waiting for data in finished runs.

    Every training line of the log holds ``data_time`` and ``time`` (the
    iteration, the wait included), each the mean over the logging window.
    Each window is weighted by the iterations it stands for
    (:func:`~hvlm.analysis.log_curves.training_windows`): the share is
    ``sum(data_time * n) / sum(time * n)``. Validation lines (no ``iter``
    key) are left out. An epoch's first window also holds starting the
    DataLoader workers, so the share without those is reported too.

    Args:
        path (str): A JSON log, a run's ``<timestamp>`` directory, or a work
            dir: all its runs, as ``analyze_logs.py`` reads them
            (:func:`~hvlm.analysis.log_curves.scalars_files`).
        target (float): The largest acceptable share.

    Returns:
        dict: ``files`` (the logs read), ``windows`` and ``iters`` (training
        lines read, iterations they stand for), ``share``,
        ``share_without_first_windows`` (None when no epoch has a second
        window), ``max_window_share``, ``target`` and ``ok``
        (``share <= target``).

    Raises:
        FileNotFoundError: No log at ``path``.
        ValueError: A line is not a JSON object, or no line has training
            timings.
    """
    files = scalars_files(path)
    records = [r for f in files for r in load_scalars(f)]
    windows = [(r, n) for r, n in training_windows(records)
               if 'data_time' in r and 'time' in r]
    if not windows:
        raise ValueError(
            f'{", ".join(files)}: no training line with "data_time", "time" '
            'and "iter" (logged by IterTimerHook and LoggerHook during '
            'training); is it the log of a training run?')

    def share(part):
        total = sum(float(r['time']) * n for r, n in part)
        if total <= 0:
            return None
        return sum(float(r['data_time']) * n for r, n in part) / total

    later, seen = [], set()
    for r, n in windows:
        if r.get('epoch') in seen:
            later.append((r, n))
        seen.add(r.get('epoch'))
    value = share(windows)
    return dict(
        files=files,
        windows=len(windows),
        iters=sum(n for _, n in windows),
        share=value,
        share_without_first_windows=share(later) if later else None,
        max_window_share=max(
            float(r['data_time']) / float(r['time']) for r, _ in windows
            if float(r['time']) > 0),
        target=target,
        ok=value <= target)


def format_data_time_share(result: Dict[str, object]) -> str:
    after = result['share_without_first_windows']
    files = result['files']
    runs = '\n'.join(f'  {f}' for f in files)
    return (f"{len(files)} log(s):\n{runs}\n{result['windows']} logged "
            f"training windows ({result['iters']} iterations); "
            f"data time {result['share']:.1%} of step time"
            + ('' if after is None else
               f" ({after:.1%} without each epoch's first window)")
            + f", worst window {result['max_window_share']:.1%}; target "
            f"<= {result['target']:.0%}: "
            + ('PASS' if result['ok'] else 'FAIL'))
