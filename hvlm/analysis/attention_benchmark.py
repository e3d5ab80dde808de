"""Time and peak memory of every registered attention, forward plus
backward, with :class:`FullAttention` (SDPA) measured in the same run as the
baseline (``tools/analysis_tools/benchmark_attention.py`` is the CLI).

Each case (one mechanism at one sequence length) runs in a fresh Python
process, so that one case's allocator state cannot hide or inflate
another's peak, and so that a case that grows past ``mem_cap_mb`` or
``timeout_s`` can be killed and reported instead of taking the machine down.

Peak memory is measured as :mod:`hvlm.utils.benchmark_process` describes:
allocated tensor memory on CUDA, the resident-set high-water mark on CPU.
"""
import json
import resource
import sys
import time
from typing import Dict, List, Optional, Sequence

from hvlm.utils.benchmark_process import (peak_since, reset_peak,
                                          run_module_in_subprocess)

QUADRATIC_TYPES = ('FullAttention', )
BASELINE = 'FullAttention'


def token_grid(seq_len: int) -> tuple:
    """A ``(T, H, W)`` grid of ``seq_len`` tokens with 16 x 16 frames when
    possible (what the structured mechanisms expect), else ``(N, 1, 1)``."""
    if seq_len % 256 == 0:
        return (seq_len // 256, 16, 16)
    return (seq_len, 1, 1)


def run_case(attention: dict,
             seq_len: int,
             *,
             num_heads: int = 8,
             head_dims: int = 64,
             dtype: str = 'fp32',
             device: str = 'cpu',
             repeat: int = 3,
             warmup: int = 1) -> Dict[str, float]:
    """Time forward + backward of one attention in *this* process.

    Args:
        attention (dict): Config of the attention (``type`` and extras);
            ``embed_dims`` and ``num_heads`` are filled in.
        seq_len (int): Tokens ``N`` (batch 1).
        num_heads, head_dims (int): ``C = num_heads * head_dims``.
        dtype (str): ``'fp32'``, or ``'bf16'`` for bf16 autocast as in
            ``--amp`` training.
        device (str): ``'cpu'`` or ``'cuda'``.
        repeat (int): Measured passes; the median is reported.
        warmup (int): Unmeasured passes first.

    Returns:
        dict: ``ms`` (median), ``peak_mb`` and ``memory_method``.
    """
    import torch

    import hvlm.models  # noqa: F401
    from hvlm.registry import ATTENTIONS

    if dtype not in ('fp32', 'bf16'):
        raise ValueError(f"dtype={dtype!r} is not 'fp32' or 'bf16'")
    cfg = dict(attention, embed_dims=num_heads * head_dims,
               num_heads=num_heads)
    attn = ATTENTIONS.build(cfg).to(device).train()
    x = torch.randn(1, seq_len, num_heads * head_dims, device=device,
                    requires_grad=True)  # [B, N, C]
    grad = torch.randn_like(x)
    shape = token_grid(seq_len)
    cuda = device.startswith('cuda')

    def step() -> None:
        attn.zero_grad(set_to_none=True)
        x.grad = None
        with torch.autocast(device_type=torch.device(device).type,
                            dtype=torch.bfloat16,
                            enabled=dtype == 'bf16'):
            out = attn(x, shape=shape)  # [B, N, C]
        out.backward(grad.to(out.dtype))
        if cuda:
            torch.cuda.synchronize()

    for _ in range(warmup):
        step()
    attn.zero_grad(set_to_none=True)
    x.grad = None
    base, method = reset_peak(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    return dict(
        ms=sorted(times)[len(times) // 2],
        peak_mb=peak_since(device, base),
        memory_method=method)


def run_case_in_subprocess(attention: dict,
                           seq_len: int,
                           *,
                           mem_cap_mb: Optional[float] = None,
                           timeout_s: Optional[float] = None,
                           poll_s: float = 0.05,
                           **kwargs) -> Dict[str, object]:
    """:func:`run_case` in a fresh interpreter, killed when its resident set
    exceeds ``mem_cap_mb`` or it runs longer than ``timeout_s``.

    Returns:
        dict: :func:`run_case`'s result plus ``status`` (``'ok'``,
        ``'skipped'`` or ``'error'``) and ``reason``.
    """
    return run_module_in_subprocess(
        'hvlm.analysis.attention_benchmark',
        dict(attention=attention, seq_len=seq_len, **kwargs),
        mem_cap_mb=mem_cap_mb, timeout_s=timeout_s, poll_s=poll_s)


def _predicted_mb(points: List[tuple], seq_len: int) -> Optional[float]:
    """Peak memory at ``seq_len`` extrapolated from the two largest measured
    ``(seq_len, peak_mb)`` points by a power law (linear if only one)."""
    points = sorted(p for p in points if p[1] > 0)
    if not points:
        return None
    if len(points) == 1:
        return points[0][1] * seq_len / points[0][0]
    import math
    (n0, m0), (n1, m1) = points[-2], points[-1]
    exponent = math.log(m1 / m0) / math.log(n1 / n0)
    return m1 * (seq_len / n1)**max(exponent, 1.)


def benchmark(types: Sequence[str],
              seq_lens: Sequence[int],
              *,
              full_max_len: int = 16384,
              mem_cap_mb: Optional[float] = None,
              timeout_s: Optional[float] = None,
              extra_cfgs: Optional[Dict[str, dict]] = None,
              log=print,
              **kwargs) -> List[Dict[str, object]]:
    """Measure every type at every length; the baseline first at each.

    Args:
        types (list[str]): Attention types; the baseline is added if
            missing.
        seq_lens (list[int]): Sequence lengths.
        full_max_len (int): Quadratic types (``QUADRATIC_TYPES``) are not
            run above this length.
        mem_cap_mb (float, optional): Skip a case predicted (or seen) to
            need more resident memory than this.
        timeout_s (float, optional): Per-case time cap.
        extra_cfgs (dict, optional): Extra config keys per type.
        log (callable): Progress lines.
        **kwargs: To :func:`run_case`.

    Returns:
        list[dict]: One row per case: ``type, seq_len, ms, peak_mb,
        us_per_token, time_vs_full, memory_vs_full, status, reason``.
    """
    types = [BASELINE] + [t for t in types if t != BASELINE]
    extra_cfgs = extra_cfgs or {}
    rows, measured = [], {t: [] for t in types}
    for seq_len in sorted(seq_lens):
        baseline = None
        for name in types:
            row = dict(type=name, seq_len=seq_len, ms=None, peak_mb=None,
                       us_per_token=None, time_vs_full=None,
                       memory_vs_full=None)
            predicted = _predicted_mb(measured[name], seq_len)
            if name in QUADRATIC_TYPES and seq_len > full_max_len:
                row.update(status='skipped',
                           reason=f'quadratic; run up to {full_max_len}')
            elif (mem_cap_mb is not None and predicted is not None
                  and predicted > mem_cap_mb):
                row.update(status='skipped',
                           reason=f'predicted {predicted:.0f} MB > memory '
                           f'cap {mem_cap_mb:.0f} MB')
            else:
                row.update(
                    run_case_in_subprocess(
                        dict(type=name, **extra_cfgs.get(name, {})),
                        seq_len, mem_cap_mb=mem_cap_mb, timeout_s=timeout_s,
                        **kwargs))
            if row['status'] == 'ok':
                measured[name].append((seq_len, row['peak_mb']))
                row['us_per_token'] = row['ms'] * 1e3 / seq_len
                if name == BASELINE:
                    baseline = row
                elif baseline is not None:
                    row['time_vs_full'] = row['ms'] / baseline['ms']
                    row['memory_vs_full'] = row['peak_mb'] / max(
                        baseline['peak_mb'], 1e-6)
            log(format_row(row))
            rows.append(row)
    return rows


_COLUMNS = ('type', 'seq_len', 'ms', 'peak_mb', 'us_per_token',
            'time_vs_full', 'memory_vs_full')


def format_row(row: Dict[str, object]) -> str:
    cells = []
    for key, width in zip(_COLUMNS, (28, 8, 11, 10, 12, 12, 14)):
        value = row.get(key)
        if isinstance(value, float):
            value = f'{value:.3g}' if key.endswith('full') else f'{value:.1f}'
        cells.append(f'{"-" if value is None else value!s:>{width}}')
    note = row.get('reason') or ''
    return ' '.join(cells) + (f'  {row["status"]}: {note}' if note else '')


def format_table(rows: List[Dict[str, object]]) -> str:
    """A fixed-width table of :func:`benchmark`'s rows."""
    header = ' '.join(
        f'{name:>{width}}' for name, width in zip(
            _COLUMNS, (28, 8, 11, 10, 12, 12, 14)))
    return '\n'.join([header] + [format_row(r) for r in rows])


def _main() -> None:
    """Child-process entry: run one case, print its result as JSON."""
    spec = json.loads(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    attention, seq_len = spec.pop('attention'), spec.pop('seq_len')
    threads = spec.pop('threads', None)
    if threads:
        import torch
        torch.set_num_threads(threads)
    print(json.dumps(run_case(attention, seq_len, **spec)))


if __name__ == '__main__':
    _main()
