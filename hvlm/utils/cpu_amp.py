"""Whether bfloat16 autocast pays off on this CPU, measured.

CPU autocast runs matmuls and convolutions in bfloat16. CPUs with native
bfloat16 arithmetic (Intel AMX, or AVX-512 BF16 as on Sapphire Rapids and
AMD Zen 4) run them faster than float32; CPUs without it (AVX2-only parts
such as older AMD EPYCs, or AVX-512 without BF16) emulate them and can be
ten to a hundred times slower: a 2048x2048 bfloat16 matmul ran at under
1 GFLOP/s on an AVX2 EPYC against 82 in float32. The CPU flags alone do
not settle it (the oneDNN build and the shapes matter), so this module
times one matmul in both types and applies one rule:

    bfloat16 autocast is used on CPU unless the probe's bfloat16 matmul is
    more than ``SLOWDOWN_LIMIT`` (2) times slower than its float32 one.

The probe takes a few tens of milliseconds (about half a second where
bfloat16 is slow) and runs once per process. Limiting oneDNN to AVX2
(``ONEDNN_MAX_CPU_ISA=AVX2``) makes a CPU with native bfloat16 behave like
one without, which is how the slow case can be tried on any machine.
"""
import functools
import os
import time
from dataclasses import dataclass
from typing import Tuple

import torch

# bfloat16 slower than float32 by more than this: do not autocast
SLOWDOWN_LIMIT = 2.0
# a linear layer's matmul: 2048 tokens of 256 channels (small square
# matmuls take another kernel path and hide the slowdown)
_PROBE_SHAPE = (2048, 256, 256)
_PROBE_REPEATS = 3


@dataclass(frozen=True)
class CPUBF16Probe:
    """The probe's measurement and what it means.

    Attributes:
        capability (str): ``torch.backends.cpu.get_cpu_capability()``.
        native_flags (tuple): the bfloat16 CPU flags Linux reports
            (``amx_bf16``, ``avx512_bf16``); empty where none or unknown.
        fp32_gflops (float): the probe matmul's float32 throughput.
        bf16_gflops (float): the same matmul's bfloat16 throughput.
    """
    capability: str
    native_flags: Tuple[str, ...]
    fp32_gflops: float
    bf16_gflops: float

    @property
    def slowdown(self) -> float:
        """How many times slower bfloat16 is than float32 (< 1: faster)."""
        return self.fp32_gflops / max(self.bf16_gflops, 1e-9)

    @property
    def bf16_pays_off(self) -> bool:
        return self.slowdown <= SLOWDOWN_LIMIT

    def describe(self) -> str:
        flags = ', '.join(self.native_flags) or 'no native bfloat16 flag'
        m, k, n = _PROBE_SHAPE
        return (f'on this CPU (capability {self.capability}, {flags}) a '
                f'[{m}, {k}] x [{k}, {n}] bfloat16 matmul ran at '
                f'{self.bf16_gflops:.1f} GFLOP/s against '
                f'{self.fp32_gflops:.1f} in float32 '
                f'({self.slowdown:.1f}x the time)')


def _native_bf16_flags() -> Tuple[str, ...]:
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    flags = set(line.split(':', 1)[1].split())
                    return tuple(f for f in ('amx_bf16', 'avx512_bf16')
                                 if f in flags)
    except OSError:
        pass
    return ()


def _matmul_gflops(dtype: torch.dtype) -> float:
    m, k, n = _PROBE_SHAPE
    a = torch.randn(m, k).to(dtype)
    b = torch.randn(k, n).to(dtype)
    a @ b  # warm-up: oneDNN picks and caches its kernel
    best = float('inf')
    for _ in range(_PROBE_REPEATS):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * m * k * n / max(best, 1e-9) / 1e9


@functools.lru_cache(maxsize=None)
def probe_cpu_bf16() -> CPUBF16Probe:
    """Time the probe matmul in float32 and bfloat16 (once per process)."""
    return CPUBF16Probe(
        capability=torch.backends.cpu.get_cpu_capability(),
        native_flags=_native_bf16_flags(),
        fp32_gflops=_matmul_gflops(torch.float32),
        bf16_gflops=_matmul_gflops(torch.bfloat16))


def cpu_amp_advice() -> str:
    """Why ``--amp`` is off on this CPU and what to use instead, or ``''``
    when bfloat16 autocast pays off here (or a GPU is used)."""
    if torch.cuda.is_available() or os.environ.get('HVLM_CPU_AMP') == '1':
        return ''
    probe = probe_cpu_bf16()
    if probe.bf16_pays_off:
        return ''
    return (f'--amp: {probe.describe()}, so bfloat16 autocast would slow '
            'training and evaluation down; running in '
            'float32 instead. bfloat16 autocast pays off on CPUs with AMX or '
            'AVX-512 BF16 (Intel Sapphire Rapids and later, AMD Zen 4 and '
            'later); set HVLM_CPU_AMP=1 to autocast anyway (e.g. to check a '
            'recipe\'s numerics).')
