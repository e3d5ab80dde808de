"""Several training processes on CPU, with gloo.

mmengine's ``init_dist`` calls ``torch.cuda.set_device`` unconditionally and
its DDP wrapper passes ``device_ids=[LOCAL_RANK]``, so ``launcher='pytorch'``
fails on a machine without a GPU. When CUDA is absent, hvlm initialises the
gloo process group itself from the launcher's environment before the Runner
is built (the Runner then skips ``init_dist``) and wraps the model with
``device_ids=None``.

mmengine's Runner never destroys the process group. A process that exits
with the group alive can abort during interpreter shutdown ("terminate
called without an active exception", SIGABRT) when gloo's worker threads
release tensors after Python is gone, turning a finished run into a failed
one. The tools call ``close_dist`` once the run has succeeded.
"""
import datetime
import os
import subprocess
from typing import Optional

import torch
import torch.distributed as dist

__all__ = ['close_dist', 'init_cpu_dist', 'launcher_env']


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


def close_dist() -> bool:
    """Destroy the default process group, if there is one.

    Call it after the run has finished on every rank, not from an error
    path: a rank that failed mid-collective would leave the others blocked.

    Returns:
        True when a group was destroyed.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return False
    dist.destroy_process_group()
    return True
