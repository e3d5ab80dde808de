"""Several training processes on CPU, with gloo.

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally and
its DDP wrapper passes ``device_ids=[LOCAL_RANK]``, so ``launcher='pytorch'``
fails on a machine without a GPU. When CUDA is absent, hvlm initialises the
gloo process group itself from the launcher's environment before the Runner
is built (the Runner then skips ``init_dist``) and wraps the model with
``device_ids=None``.

mmengine's Runner never destroys the process group, and its DDP wrapper
keeps a reference to it, so the group (and gloo's worker threads) lives
until the interpreter shuts down. A gloo worker that releases the last
reference to a finished collective frees that collective's tensors, which
needs the GIL when Python objects are attached to them. In a live
interpreter this race is a deadlock (seen): the main thread, holding the
GIL, destroys the group and waits for the mutex the worker holds while it
waits for the GIL. During shutdown, Python ends a thread that asks for the
GIL, which is the likely source of the abort CI saw at exit ("terminate
called without an active exception", SIGABRT, a finished run turned into
a failed one). ``close_dist`` tears the group down, and its threads with
it, while the interpreter is alive; the tools call it once the run has
succeeded.
"""
import datetime
import gc
import os
import subprocess
import time
import warnings
from typing import Optional

import torch
import torch.distributed as dist

__all__ = ['close_dist', 'gloo_threads', 'init_cpu_dist', 'launcher_env']


def launcher_env(launcher: str) -> dict:
    """RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT for a launcher.

    ``pytorch`` (torchrun) sets them itself; ``slurm`` and ``mpi`` are mapped
    from their own variables, as mmengine does for GPUs.
    """
    env = os.environ
    if launcher == 'pytorch':
        missing = [k for k in ('RANK', 'WORLD_SIZE') if k not in env]
        if missing:
            raise RuntimeError(
                f"--launcher pytorch needs the variables {missing}; start "
                'the job with torchrun (tools/dist_train.sh) or use '
                '--launcher none')
        return dict(
            RANK=env['RANK'],
            WORLD_SIZE=env['WORLD_SIZE'],
            LOCAL_RANK=env.get('LOCAL_RANK', env['RANK']),
            MASTER_ADDR=env.get('MASTER_ADDR', '127.0.0.1'),
            MASTER_PORT=env.get('MASTER_PORT', '29500'))
    if launcher == 'slurm':
        nodes = env['SLURM_NODELIST']
        addr = subprocess.getoutput(
            f'scontrol show hostname {nodes} | head -n1')
        return dict(
            RANK=env['SLURM_PROCID'],
            WORLD_SIZE=env['SLURM_NTASKS'],
            LOCAL_RANK=env.get('SLURM_LOCALID', '0'),
            MASTER_ADDR=env.get('MASTER_ADDR', addr),
            MASTER_PORT=env.get('MASTER_PORT', '29500'))
    if launcher == 'mpi':
        return dict(
            RANK=env['OMPI_COMM_WORLD_RANK'],
            WORLD_SIZE=env['OMPI_COMM_WORLD_SIZE'],
            LOCAL_RANK=env.get('OMPI_COMM_WORLD_LOCAL_RANK', '0'),
            MASTER_ADDR=env.get('MASTER_ADDR', '127.0.0.1'),
            MASTER_PORT=env.get('MASTER_PORT', '29500'))
    raise ValueError(f'launcher={launcher!r} must be one of '
                     "'none', 'pytorch', 'slurm', 'mpi'")


def init_cpu_dist(launcher: str,
                  timeout: Optional[datetime.timedelta] = None) -> bool:
    """Start a gloo process group when ``launcher`` asks for several
    processes and there is no GPU.

    Returns:
        True when this call (or an earlier one) set up the group, False when
        nothing was needed (launcher 'none', or CUDA is available and
        mmengine's own ``init_dist`` will run).
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if dist.is_available() and dist.is_initialized():
        return True
    env = launcher_env(launcher)
    os.environ.update(env)
    dist.init_process_group(
        backend='gloo',
        init_method='env://',
        rank=int(env['RANK']),
        world_size=int(env['WORLD_SIZE']),
        timeout=timeout or datetime.timedelta(minutes=30))
    return True


def gloo_threads() -> Optional[int]:
    """How many of gloo's threads (its per-group workers and transport
    loops) this process runs, or None where threads cannot be listed
    (only Linux's ``/proc`` names them)."""
    tasks = '/proc/self/task'
    if not os.path.isdir(tasks):
        return None
    count = 0
    for tid in os.listdir(tasks):
        try:
            with open(f'{tasks}/{tid}/comm') as f:
                name = f.read().strip()
        except OSError:  # the thread ended while we looked
            continue
        count += name.startswith(('pt_gloo', 'gloo'))
    return count


def close_dist(settle_s: float = 0.2) -> bool:
    """Destroy the default process group, and with it gloo's threads,
    while the interpreter is fully alive.

    Call it on every rank after the run has finished and after dropping the
    Runner, not from an error path: a rank that failed mid-collective would
    leave the others blocked in the barrier.

    Steps: a barrier, so that every rank has finished its collectives; a
    pause of ``settle_s`` without the GIL, in which gloo's workers finish
    releasing the tensors of the last collectives (they need the GIL for
    that); the group is destroyed; a garbage collection frees a finished
    Runner kept only by reference cycles, whose DDP wrapper held the last
    reference to the group, so the group's destructor joins its idle
    workers here rather than at shutdown.

    Returns:
        True when a group was destroyed.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return False
    dist.barrier()
    time.sleep(settle_s)
    dist.destroy_process_group()
    gc.collect()
    left = gloo_threads()
    if left:
        warnings.warn(
            f'{left} gloo threads still run after the process group was '
            'destroyed: something still holds the group (a '
            'DistributedDataParallel model, a Runner that is still '
            'referenced?). Drop it before close_dist(); exiting with the '
            'group alive can abort the process at shutdown.')
    return True
