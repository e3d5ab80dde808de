"""Speed and peak memory of SimCLR training steps (gradient checkpointing
on and off) and of HViT with FullAttention against an efficient attention
at a high resolution; every figure beside its baseline from the same run.

Each case runs in a fresh process (:mod:`hvlm.utils.benchmark_process`)
so that peak memory is the case's own.
"""
import json
import resource
import sys
import time
from typing import Callable, Dict, List, Optional

from hvlm.utils.benchmark_process import (peak_since, reset_peak,
                                          run_module_in_subprocess)


def hvit_config(img_size: int, patch_size: int, embed_dim: int,
                depths: List[int], heads: List[int], attention: dict,
                with_cp: bool) -> dict:
    return dict(type='HViT', img_size=img_size, patch_size=patch_size,
                embed_dim_rgb=embed_dim, depths=depths, num_heads=heads,
                attention=attention, with_cp=with_cp, drop_path_rate=0.)


def run_case(spec: dict) -> Dict[str, float]:
    """One training step setting, timed in *this* process.

    ``spec``: ``kind`` (``'simclr'``: a SimCLR step on two views per image;
    ``'hvit'``: HViT forward + backward of the pooled features), ``batch``,
    ``backbone`` (an ``HViT`` config), ``repeat``, ``warmup``, ``device``.

    Returns:
        dict: ``ms`` (median step), ``images_per_s`` (images, not views,
        per second), ``peak_mb``, ``memory_method``.
    """
    import torch

    import hvlm.models  # noqa: F401
    from hvlm.registry import MODELS

    device = spec.get('device', 'cpu')
    batch, size = spec['batch'], spec['backbone']['img_size']
    if spec['kind'] == 'simclr':
        model = MODELS.build(dict(type='SimCLR', backbone=spec['backbone']))
        x = torch.randn(batch, 2, 3, size, size, device=device)
    elif spec['kind'] == 'hvit':
        model = MODELS.build(spec['backbone'])
        x = torch.randn(batch, 3, size, size, device=device)
    else:
        raise ValueError(f"kind={spec['kind']!r} is not 'simclr' or 'hvit'")
    model = model.to(device).train()
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
    cuda = device.startswith('cuda')

    def step() -> None:
        optim.zero_grad(set_to_none=True)
        if spec['kind'] == 'simclr':
            loss = model(x, mode='loss')['loss']
        else:
            loss = model(x).square().mean()
        loss.backward()
        optim.step()
        if cuda:
            torch.cuda.synchronize()

    for _ in range(spec.get('warmup', 1)):
        step()
    base, method = reset_peak(device)
    times = []
    for _ in range(spec.get('repeat', 3)):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    ms = sorted(times)[len(times) // 2] * 1e3
    return dict(ms=ms, images_per_s=batch / ms * 1e3,
                peak_mb=peak_since(device, base), memory_method=method)


def run_case_in_subprocess(spec: dict, **caps) -> Dict[str, object]:
    """:func:`run_case` in a fresh interpreter (``mem_cap_mb``,
    ``timeout_s`` caps)."""
    return run_module_in_subprocess('hvlm.analysis.selfsup_benchmark', spec,
                                    **caps)


def benchmark(groups: Dict[str, List[dict]],
              run: Optional[Callable[[dict], dict]] = None) -> List[dict]:
    """Run every group's cases; the first case of a group is its baseline
    and every row carries ``speed_vs_baseline`` (images/s ratio) and
    ``memory_vs_baseline`` (peak ratio) against it.

    Args:
        groups: ``{group name: [case spec with a 'name', ...]}``.
        run: Runs one spec (default: a fresh process per case).
    """
    run = run or run_case_in_subprocess
    rows = []
    for group, cases in groups.items():
        base = None
        for case in cases:
            spec = {k: v for k, v in case.items() if k != 'name'}
            result = dict(run(spec))
            result.setdefault('status', 'ok')
            row = dict(group=group, name=case['name'], **result)
            if base is None:
                base = row
            ok = row['status'] == 'ok' and base['status'] == 'ok'
            row['speed_vs_baseline'] = (
                row['images_per_s'] / base['images_per_s'] if ok else None)
            row['memory_vs_baseline'] = (
                row['peak_mb'] / base['peak_mb']
                if ok and base['peak_mb'] > 0 else None)
            rows.append(row)
    return rows


def format_table(rows: List[dict]) -> str:
    """A plain-text table, baselines first in each group."""
    lines = [f'{"group":<26} {"case":<28} {"images/s":>9} {"peak MB":>9} '
             f'{"speed x":>8} {"memory x":>9}']
    for r in rows:
        if r['status'] != 'ok':
            lines.append(f'{r["group"]:<26} {r["name"]:<28} '
                         f'{r["status"]}: {r.get("reason", "")}')
            continue
        speed = r['speed_vs_baseline']
        memory = r['memory_vs_baseline']
        lines.append(
            f'{r["group"]:<26} {r["name"]:<28} {r["images_per_s"]:9.2f} '
            f'{r["peak_mb"]:9.1f} {speed:8.2f} '
            f'{"-" if memory is None else format(memory, "9.2f"):>9}')
    return '\n'.join(lines)


def _main() -> None:
    """Child-process entry: run one case, print its result as JSON."""
    spec = json.loads(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    threads = spec.pop('threads', None)
    if threads:
        import torch
        torch.set_num_threads(threads)
    print(json.dumps(run_case(spec)))


if __name__ == '__main__':
    _main()
