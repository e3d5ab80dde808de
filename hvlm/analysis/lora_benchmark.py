"""Time the backbone with and without LoRA, merged and unmerged."""
import copy
import random
import statistics
import time
from typing import Dict, Optional, Sequence

import torch

from hvlm.registry import MODELS

DEFAULT_ADAPTER = dict(type='LoRAAdapter', rank=8, alpha=16., dropout=0.05)


@torch.no_grad()
def benchmark_lora(model_cfg: dict,
                   adapter_cfg: Optional[dict] = None,
                   batch_size: int = 4,
                   clip_shape: Sequence[int] = (8, 64, 64),
                   iters: int = 10,
                   warmup: int = 2,
                   threads: Optional[int] = None,
                   seed: int = 0) -> Dict[str, object]:
    """Inference time of the backbone in four settings, measured in one run.

    - ``base``: the model without adapters (the baseline);
    - ``lora_one_domain``: LoRA unmerged, one domain for the batch;
    - ``lora_per_sample``: LoRA unmerged, a different domain per sample
      (gathered factors, batched matmuls);
    - ``lora_merged``: the domain merged into the weights.

    The settings run round-robin, one forward each per round, in an order
    shuffled every round (a fixed order gave the last setting a steady
    few-percent handicap), so a load change on a shared machine and the
    cache state left by the previous setting hit all of them alike; the
    median per
    setting is reported with its ratio to ``base``. The merged model's
    output is checked against the unmerged one in the same run.

    Args:
        model_cfg (dict): Model config (``MODELS``); its ``adapter`` key, if
            any, is replaced by ``adapter_cfg``.
        adapter_cfg (dict, optional): LoRA config; rank 8, alpha 16 by
            default, over the four demo domains.
        batch_size (int): Clips per forward.
        clip_shape (Sequence[int]): ``(T, H, W)`` of each clip.
        iters (int): Timed rounds.
        warmup (int): Untimed rounds first.
        threads (int, optional): ``torch.set_num_threads`` for the run.
        seed (int): Seed of the weights and inputs.

    Returns:
        dict: ``seconds`` (setting -> median seconds per forward),
        ``ratio_to_base``, ``max_abs_diff_merged`` and the settings used.
    """
    if iters < 1 or warmup < 0:
        raise ValueError(f'iters={iters} must be >= 1 and warmup={warmup} '
                         '>= 0')
    import hvlm.models  # noqa: F401
    if threads is not None:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    base_cfg = copy.deepcopy(dict(model_cfg))
    base_cfg.pop('adapter', None)
    base_cfg.pop('router', None)
    base_cfg.pop('experts', None)
    base = MODELS.build(base_cfg).eval()
    lora_cfg = dict(base_cfg)
    lora_cfg['adapter'] = dict(adapter_cfg or DEFAULT_ADAPTER)
    lora = MODELS.build(lora_cfg).eval()
    lora.load_state_dict(base.state_dict(), strict=False)
    adapter = lora.adapter
    for p in adapter.lora_parameters():  # non-zero updates, as after training
        p.normal_(0, 0.02)
    merged = copy.deepcopy(lora)
    domain = adapter.domains[0]
    merged.adapter.merge(domain)

    T, H, W = clip_shape
    clips = torch.randn(batch_size, 3, T, H, W)  # [B, C, T, H, W]
    ids = torch.arange(batch_size) % len(adapter.domains)  # [B]

    def run_base():
        return base.backbone(clips).tokens

    def run_one():
        adapter.select(domain)
        return lora.backbone(clips).tokens

    def run_mixed():
        adapter.select(ids)
        return lora.backbone(clips).tokens

    def run_merged():
        return merged.backbone(clips).tokens

    settings = dict(base=run_base, lora_one_domain=run_one,
                    lora_per_sample=run_mixed, lora_merged=run_merged)
    times = {k: [] for k in settings}
    order = random.Random(seed)
    for i in range(warmup + iters):
        names = list(settings)
        order.shuffle(names)
        for name in names:
            fn = settings[name]
            start = time.perf_counter()
            fn()
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    seconds = {k: statistics.median(v) for k, v in times.items()}
    diff = (run_merged() - run_one()).abs().max().item()
    return dict(
        seconds=seconds,
        ratio_to_base={k: v / seconds['base'] for k, v in seconds.items()},
        max_abs_diff_merged=diff,
        batch_size=batch_size,
        clip_shape=tuple(clip_shape),
        iters=iters,
        threads=torch.get_num_threads(),
        rank=adapter.rank,
        lora_layers=len(adapter.layers))


def format_benchmark(result: Dict[str, object]) -> str:
    lines = [
        f'backbone inference, batch {result["batch_size"]} x clip '
        f'{result["clip_shape"]}, {result["iters"]} rounds, '
        f'{result["threads"]} threads, rank {result["rank"]} on '
        f'{result["lora_layers"]} linears', f'{"setting":<18}{"ms":>10}'
        f'{"x base":>10}'
    ]
    for k, s in result['seconds'].items():
        lines.append(f'{k:<18}{1000 * s:>10.2f}'
                     f'{result["ratio_to_base"][k]:>10.3f}')
    lines.append(f'merged vs unmerged: max |diff| = '
                 f'{result["max_abs_diff_merged"]:.2e}')
    return '\n'.join(lines)
