"""What every benchmark with a memory figure shares: peak memory of a
stretch of code, and one case per fresh process under memory and time caps.

Peak memory:

* CUDA: ``torch.cuda.max_memory_allocated`` minus what was allocated when
  the measurement started: the tensor memory of the measured code.
* CPU: the process's resident-set high-water mark (``VmHWM``), reset through
  ``/proc/self/clear_refs``, minus the resident set at the start. Cases run
  with glibc told to serve every allocation above 64 KiB with ``mmap`` and to
  return it on free (:data:`MALLOC_ENV`), so the resident set follows the
  live tensors instead of malloc's caches.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, Optional, Tuple

MALLOC_ENV = dict(MALLOC_MMAP_THRESHOLD_='65536', MALLOC_TRIM_THRESHOLD_='0')


def read_status(pid: int, field: str) -> Optional[int]:
    """``field`` (e.g. ``VmRSS``) of ``/proc/<pid>/status`` in bytes, or
    ``None`` when the process or the field is gone."""
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def reset_peak(device: str) -> Tuple[int, str]:
    """Start a peak measurement on ``device``.

    Returns:
        tuple: the baseline in bytes and the name of the method.
    """
    if device.startswith('cuda'):
        import torch
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated(), \
            'torch.cuda.max_memory_allocated'
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM to the current resident set
    return read_status(os.getpid(), 'VmRSS'), \
        'VmHWM (peak RSS), malloc mmap threshold 64 KiB'


def peak_since(device: str, base: int) -> float:
    """MB above ``base`` at the high-water mark since :func:`reset_peak`."""
    if device.startswith('cuda'):
        import torch
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    return (read_status(os.getpid(), 'VmHWM') - base) / 2**20


def run_module_in_subprocess(module: str,
                             spec: dict,
                             *,
                             mem_cap_mb: Optional[float] = None,
                             timeout_s: Optional[float] = None,
                             poll_s: float = 0.05) -> Dict[str, object]:
    """``python -m module JSON(spec)`` in a fresh interpreter (with
    :data:`MALLOC_ENV`), killed when its resident set passes ``mem_cap_mb``
    or it runs longer than ``timeout_s``. The module prints its result as
    one JSON object on the last line of its standard output.

    Output goes to temporary files, not pipes, so a chatty case cannot
    block on a full pipe while it is being polled.

    Returns:
        dict: the case's result plus ``status`` (``'ok'``, ``'skipped'`` or
        ``'error'``) and ``reason`` (the cap passed, or the last line of the
        case's standard error).
    """
    env = dict(os.environ, **MALLOC_ENV)
    with tempfile.TemporaryFile('w+') as out, \
            tempfile.TemporaryFile('w+') as err:
        proc = subprocess.Popen(
            [sys.executable, '-m', module, json.dumps(spec)],
            stdout=out, stderr=err, env=env, text=True)
        start, reason = time.monotonic(), None
        while proc.poll() is None:
            rss = read_status(proc.pid, 'VmRSS') or 0
            if mem_cap_mb is not None and rss > mem_cap_mb * 2**20:
                reason = (f'resident set passed the memory cap of '
                          f'{mem_cap_mb:.0f} MB')
            elif timeout_s is not None and \
                    time.monotonic() - start > timeout_s:
                reason = f'ran longer than the time cap of {timeout_s:.0f} s'
            if reason:
                proc.kill()
                proc.wait()
                return dict(status='skipped', reason=reason)
            time.sleep(poll_s)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        lines = [line for line in stderr.strip().splitlines() if line]
        return dict(status='error', reason=(lines or ['(no output)'])[-1])
    return dict(json.loads(stdout.strip().splitlines()[-1]), status='ok',
                reason='')
