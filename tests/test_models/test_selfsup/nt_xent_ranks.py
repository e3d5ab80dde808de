"""The rank worker of test_simclr, kept light: spawned ranks import this
module only, and load ``hvlm/models/selfsup/nt_xent.py`` from its file so
that they do not import (and register) every model of hvlm first."""
import importlib.util
import os
import os.path as osp


def load_nt_xent():
    path = osp.join(
        osp.dirname(__file__), '..', '..', '..', 'hvlm', 'models',
        'selfsup', 'nt_xent.py')
    spec = importlib.util.spec_from_file_location('nt_xent_alone', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rank_worker(rank, port, z1, z2, results):
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    nt_xent_loss = load_nt_xent().nt_xent_loss
    n = len(z1) // 2
    a = z1[rank * n:(rank + 1) * n].clone().requires_grad_()
    b = z2[rank * n:(rank + 1) * n].clone().requires_grad_()
    loss, _ = nt_xent_loss(a, b, 0.3)
    loss.backward()
    results.put((rank, loss.item(), a.grad.numpy(), b.grad.numpy()))
    dist.destroy_process_group()
