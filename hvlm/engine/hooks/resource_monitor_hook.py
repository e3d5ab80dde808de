"""Log the memory and file descriptors a training run holds."""
import os
import time
from typing import List, Optional, Set, Tuple

from mmengine.hooks import Hook

from hvlm.registry import HOOKS


def _children(pid: int) -> List[int]:
    found = []
    task_dir = f'/proc/{pid}/task'
    for tid in os.listdir(task_dir):
        try:
            with open(f'{task_dir}/{tid}/children') as f:
                found += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return found


def _rss_mb(pid: int) -> float:
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return 0.0


def _fd_entries(pid: int) -> Set[Tuple[str, str]]:
    found = set()
    for fd in os.listdir(f'/proc/{pid}/fd'):
        try:
            found.add((fd, os.readlink(f'/proc/{pid}/fd/{fd}')))
        except OSError:  # closed between listdir and readlink
            continue
    return found


def held_fds(pid: int, readings: int = 3, gap: float = 0.02) -> int:
    """Descriptors of ``pid`` open (same number, same target) in each of
    ``readings`` looks ``gap`` seconds apart. A leaked descriptor stays
    open; one that another thread holds for a moment (TensorBoard's
    writer appends to its event file from a background thread) does not
    count, so one unlucky reading is not read as a leak."""
    held = _fd_entries(pid)
    for _ in range(readings - 1):
        time.sleep(gap)
        held &= _fd_entries(pid)
    return len(held)


def process_tree_usage(pid: Optional[int] = None) -> Tuple[float, int]:
    """(resident MB of ``pid`` and all its descendants, descriptors that
    ``pid`` holds open, see ``held_fds``). Linux only (reads /proc)."""
    pid = os.getpid() if pid is None else pid
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        try:
            total += _rss_mb(current)
            stack += _children(current)
        except OSError:  # a worker that exited meanwhile
            continue
    return total, held_fds(pid)


@HOOKS.register_module()
class ResourceMonitorHook(Hook):
    """Record resident memory (the trainer plus its DataLoader workers,
    where decoders leak if they leak) and open file descriptors every
    ``interval`` training iterations, as ``train/rss_mb`` and
    ``train/num_fds`` in the log and TensorBoard. ``samples`` keeps
    ``(iteration, rss_mb, num_fds)`` for ``benchmark_soak.py``.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 50) -> None:
        if interval < 1:
            raise ValueError(f'interval={interval} must be at least 1')
        self.interval = interval
        self.samples: List[Tuple[int, float, int]] = []
        self.enabled = os.path.isdir('/proc/self/fd')

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if not self.enabled or not self.every_n_train_iters(
                runner, self.interval):
            return
        rss, fds = process_tree_usage()
        self.samples.append((runner.iter + 1, rss, fds))
        runner.message_hub.update_scalar('train/rss_mb', rss)
        runner.message_hub.update_scalar('train/num_fds', fds)
