"""Encoder training-step throughput at several token-merging ratios."""
import copy
import statistics
import time
from typing import Dict, List, Optional, Sequence

import torch

from hvlm.registry import MODELS

DEFAULT_MERGER = dict(type='AdaptiveTokenMerger')
CUES = ('motion', 'saliency', 'matching')


def _encoder_cfg(model_cfg: dict, ratios: Sequence[float]) -> dict:
    """The backbone config of ``model_cfg`` with an
    :class:`AdaptiveTokenMerger` whose bounds admit every ratio in
    ``ratios`` (the config's own merger settings are kept when it is one;
    any other merger is replaced by the default one)."""
    cfg = copy.deepcopy(dict(model_cfg.get('backbone', model_cfg)))
    merger = dict(cfg.get('merger') or DEFAULT_MERGER)
    if merger.get('type') != 'AdaptiveTokenMerger':
        merger = dict(DEFAULT_MERGER)
    merging = dict(merger.get('adaptive_merging', {}))
    merging['min_compression_ratio'] = min(
        merging.get('min_compression_ratio', 0.25), *ratios)
    merging['max_compression_ratio'] = 1.0
    merging['target_compression_ratio'] = max(
        merging.get('target_compression_ratio', 0.5),
        merging['min_compression_ratio'])
    merger['adaptive_merging'] = merging
    cfg['merger'] = merger
    return cfg


def _set_ratio(encoder: torch.nn.Module, ratio: float) -> None:
    """Set the keep ratio the way a training hook does: on every module
    that has ``set_compression_ratio``."""
    for module in encoder.modules():
        if hasattr(module, 'set_compression_ratio'):
            module.set_compression_ratio(ratio)


def benchmark_merging(model_cfg: dict,
                      ratios: Sequence[float] = (1.0, 0.75, 0.5, 0.25),
                      batch_size: int = 8,
                      clip_shape: Sequence[int] = (8, 64, 64),
                      iters: int = 10,
                      warmup: int = 2,
                      threads: Optional[int] = None,
                      seed: int = 0) -> Dict[str, object]:
    """Forward plus backward time of the encoder at each keep ratio.

    One encoder runs every ratio, set before each step through
    ``set_compression_ratio`` as a training hook would; at ratio 1.0 its
    merge points keep every token and are skipped, so the baseline is the
    same encoder (same weights, same blocks) without merging. Ratios run
    round-robin, one step each per round, so a load change on a shared
    machine hits all of them alike, and the median step is reported. With
    the merger's ``profile`` switched on, the time spent in motion cues,
    saliency cues and matching is measured inside every step (CUDA is
    synchronised around each scope), and reported as a share of the step;
    the work all frame cues share (downsampling the frames, pooling the
    maps onto the tokens) counts as motion when motion is on.

    Args:
        model_cfg (dict): A model config (its ``backbone`` is used) or a
            backbone config. Its merger settings (and ``merge_after``) are
            kept when it is an ``AdaptiveTokenMerger``; otherwise the
            default one is used.
        ratios (Sequence[float]): Keep ratios; 1.0 means no merging and is
            the baseline of every speed-up (added when missing).
        batch_size (int): Clips per step.
        clip_shape (Sequence[int]): ``(T, H, W)`` of each clip.
        iters (int): Timed rounds.
        warmup (int): Untimed rounds first.
        threads (int, optional): ``torch.set_num_threads`` for the run.
        seed (int): Seed of the weights and the inputs.

    Returns:
        dict: ``rows`` (one per ratio: ``ratio``, ``tokens_after_merge``,
        ``step_s``, ``clips_per_s``, ``speedup``, ``overhead_share`` and a
        ``<cue>_share`` per cue) plus the settings used.
    """
    if iters < 1 or warmup < 0:
        raise ValueError(f'iters={iters} must be >= 1 and warmup={warmup} '
                         '>= 0')
    if any(not 0 < r <= 1 for r in ratios):
        raise ValueError(f'ratios={list(ratios)} must lie in (0, 1]')
    from hvlm.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    if threads is not None:
        torch.set_num_threads(threads)
    ratios = sorted(set(ratios) | {1.0}, reverse=True)
    torch.manual_seed(seed)
    encoder = MODELS.build(_encoder_cfg(model_cfg, ratios))
    encoder.train()
    merger = encoder.merger
    merger.profile = True
    generator = torch.Generator().manual_seed(seed)
    clips = torch.randn(batch_size, 3, *clip_shape, generator=generator)

    steps: Dict[float, List[float]] = {r: [] for r in ratios}
    cue_time = {r: {c: [] for c in CUES} for r in ratios}
    tokens = {}
    for round_index in range(warmup + iters):
        for ratio in ratios:
            _set_ratio(encoder, ratio)
            merger.timings.clear()
            encoder.zero_grad(set_to_none=True)
            start = time.perf_counter()
            feats = encoder(clips)
            feats.tokens.float().square().mean().backward()
            elapsed = time.perf_counter() - start
            tokens[ratio] = int(feats.tokens.shape[1])
            if round_index < warmup:
                continue
            steps[ratio].append(elapsed)
            for cue in CUES:
                cue_time[ratio][cue].append(merger.timings.get(cue, 0.))
    base = statistics.median(steps[1.0])
    rows = []
    for ratio in ratios:
        step = statistics.median(steps[ratio])
        row = dict(
            ratio=ratio,
            tokens_after_merge=tokens[ratio],
            step_s=step,
            clips_per_s=batch_size / step,
            speedup=base / step)
        for cue in CUES:
            cue_s = statistics.median(cue_time[ratio][cue])
            row[f'{cue}_share'] = cue_s / step
        row['overhead_share'] = sum(row[f'{c}_share'] for c in CUES)
        rows.append(row)
    return dict(
        rows=rows,
        merge_after=list(encoder.merge_after),
        mode=merger.scheduler.mode,
        batch_size=batch_size,
        clip_shape=list(clip_shape),
        iters=iters,
        warmup=warmup,
        threads=torch.get_num_threads())


def format_merging_benchmark(result: Dict[str, object]) -> str:
    """A Markdown table of :func:`benchmark_merging`'s result; the
    no-merging baseline (ratio 1.0) is its first row."""
    lines = [
        f"batch {result['batch_size']} x clips {result['clip_shape']}, "
        f"{result['iters']} timed steps, {result['threads']} threads; "
        'forward + backward of the encoder; merges after blocks '
        f"{result['merge_after']}, plan mode {result['mode']!r}",
        '',
        '| keep ratio | tokens after merge | step (ms) | clips/s | '
        'speed-up vs 1.0 | motion | saliency | matching | merging overhead |',
        '|---|---|---|---|---|---|---|---|---|',
    ]
    for row in result['rows']:
        lines.append(
            f"| {row['ratio']:.2f} | {row['tokens_after_merge']} | "
            f"{row['step_s'] * 1e3:.1f} | {row['clips_per_s']:.1f} | "
            f"{row['speedup']:.2f}x | {row['motion_share']:.1%} | "
            f"{row['saliency_share']:.1%} | {row['matching_share']:.1%} | "
            f"{row['overhead_share']:.1%} |")
    return '\n'.join(lines)
