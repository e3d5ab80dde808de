"""Sharded training with mmengine's FlexibleRunner and torch's FSDP on
the CPU (gloo): 2 processes x batch 2, stopped after one epoch and resumed
from their sharded checkpoint (one file per rank), end at the weights of 1
process x batch 4 trained without a stop."""
import pytest
import torch
import torch.distributed as dist

from tests.dist_helpers import free_port, run_two_ranks
from tests.hf_causal_lms import save_tiny_lm
from .conftest import REPO, run_tool

CONFIG = str(REPO / 'tests/data/configs/tiny_llm_fsdp.py')
# as in test_dist_equivalence: summation order only, a few ulps per step
TOLERANCE = 1e-5


def _load_shards(rank, port, directory, results):
    """Rank ``rank`` reads its shard file (its ShardedTensors need the
    process group) and sends back its plain tensors."""
    import hvlm.utils  # noqa: F401  (the shards' classes load safely)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    state = torch.load(f'{directory}/rank{rank}.pth', map_location='cpu',
                       weights_only=True)['state_dict']
    plain = f'{directory}/plain{rank}.pt'
    torch.save({k: v for k, v in state.items() if type(v) is torch.Tensor},
               plain)
    results.put((rank, plain))
    dist.destroy_process_group()


def shards(directory):
    got = dict(run_two_ranks(_load_shards, str(directory)))
    return [torch.load(got[r], weights_only=True) for r in (0, 1)]


@pytest.mark.slow
def test_fsdp_on_two_cpu_processes_resumed_matches_one_process(
        tiny_demo_root, tmp_path):
    """2 x 2 for one epoch, stopped, resumed from the sharded checkpoint
    for the second epoch; against 1 x 4 for two epochs uninterrupted. A
    wrong sharding, gradient average or resume (weights, optimizer state,
    sampler position) would each show in the final weights."""
    lm = tmp_path / 'lm'
    save_tiny_lm(str(lm), 'llama')
    opts = ['--deterministic', '--cfg-options',
            f'train_dataloader.dataset.data_root={tiny_demo_root}/training',
            f'model.head.heads.language.llm.pretrained={lm}']
    one, two = tmp_path / 'one', tmp_path / 'two'
    run_tool('train.py', CONFIG, '--work-dir', one, *opts,
             'train_dataloader.batch_size=4', 'runner_type=HVLMRunner',
             'strategy=None')
    for extra in (['train_cfg.max_epochs=1'], []):
        run_tool('dist_train.sh', CONFIG, 2, '--work-dir', two,
                 *(['--resume'] if not extra else []), *opts,
                 'train_dataloader.batch_size=2', *extra,
                 env=dict(PORT=str(free_port())), timeout=300)
    log = sorted(two.glob('*/*.log'))[-1].read_text()
    assert 'Resume checkpoint from' in log and 'epoch_1.pth' in log
    assert sorted(p.name for p in (two / 'epoch_2.pth').iterdir()) == [
        'rank0.pth', 'rank1.pth']

    # each rank holds a flat piece of every weight: rank 0's then rank 1's
    # is the whole weight
    a, b = shards(two / 'epoch_2.pth')
    ref = torch.load(one / 'epoch_2.pth', map_location='cpu',
                     weights_only=False)['state_dict']
    start = torch.load(one / 'epoch_1.pth', map_location='cpu',
                       weights_only=False)['state_dict']
    diff, moved = 0., 0.
    for key, value in ref.items():
        if not value.is_floating_point():
            continue
        whole = torch.cat([a[key].flatten(), b[key].flatten()])
        diff = max(diff, (whole.view_as(value) - value).abs().max().item())
        moved = max(moved, (start[key] - value).abs().max().item())
    assert diff < TOLERANCE, f'FSDP and one process differ by {diff}'
    # the resumed epoch alone moved the weights by far more than that
    assert moved > 1000 * TOLERANCE, moved
