"""tools/train.py on the TEMPURA and STKET demo configs, as a user runs
them, on a small generated demo set and a tiny model: validation reports
R@K, TEMPURA's memory and STKET's priors end up in the checkpoint."""
import json

import pytest
import torch

from .conftest import REPO, find_one, run_tool


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    """One generated demo set for both models."""
    return tmp_path_factory.mktemp('ag_demo')


def _train(tmp_path, root, config, *extra):
    opts = []
    for split in ('train', 'val'):
        ds = f'{split}_dataloader.dataset'
        opts += [f'{ds}.data_root={root}', f'{ds}.demo.root={root}',
                 f'{ds}.demo.videos=(6,3)',
                 f'{ds}.pipeline.0.scale=(36,48)',
                 f'{split}_dataloader.batch_size=2',
                 f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    work = tmp_path / 'work'
    run_tool('train.py',
             str(REPO / 'configs' / 'scene_graph' / config), '--work-dir',
             work, '--cfg-options', 'train_cfg.max_epochs=1',
             'train_cfg.val_interval=1', 'model.hidden_dim=32',
             'model.backbone.channels=(8,16)', 'model.temporal_layer=1',
             'default_hooks.logger.interval=1', *opts, *extra, timeout=600)
    scalars = [json.loads(line) for line in find_one(
        work, 'scalars.json').read_text().splitlines()]
    val = [s for s in scalars if 'sg/with_R@20' in s]
    assert val and 0.0 <= val[-1]['sg/with_mR@20'] <= 1.0
    ckpt = torch.load(find_one(work, 'best_sg_with_R@20_epoch_1.pth'),
                      map_location='cpu', weights_only=False)
    return work, ckpt['state_dict']


@pytest.mark.slow
def test_train_tempura_demo_end_to_end(tmp_path, demo_root):
    work, state = _train(tmp_path, demo_root, 'tempura_predcls_demo.py',
                         'model.num_mixtures=2')
    assert 'loss_gmm_reg' in find_one(work, '*.log').read_text()
    # the prototype memory was filled in training and saved as weights
    assert state['prototype_filled'].any()
    filled = state['prototypes'][state['prototype_filled']]
    assert filled.abs().sum(1).gt(0).all()


@pytest.mark.slow
def test_train_stket_demo_end_to_end(tmp_path, demo_root):
    work, state = _train(tmp_path, demo_root, 'stket_predcls_demo.py')
    log = find_one(work, '*.log').read_text()
    assert 'SceneGraphPriorsHook: priors counted on' in log
    assert bool(state['priors_counted'])
    # attention rows of the co-occurrence prior are distributions
    torch.testing.assert_close(state['cooccurrence'][2:, :3].sum(1),
                               torch.ones(35))
