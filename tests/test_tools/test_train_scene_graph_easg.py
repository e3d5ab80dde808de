"""tools/train.py on the EASG config, as a user runs it: fine-tuning from
an Action Genome checkpoint on a tiny EASG written in the release's layout.
The class heads of another size start from their initialisation and the
log names them; every other weight is the checkpoint's."""
import json

import pytest
import torch
from mmengine.config import Config

from hvlm.registry import MODELS
from hvlm.utils import register_all_modules
from tests.test_datasets.test_easg import write_easg
from .conftest import REPO, find_one, run_tool

CONFIGS = REPO / 'configs' / 'scene_graph'
TINY = dict(hidden_dim=32, num_heads=4, temporal_layer=1, embed_dim=8)


def _ag_checkpoint(path):
    """A tiny STTran of the Action Genome config (37 classes, 3/6/17)."""
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(str(CONFIGS / 'sttran_predcls_ag.py'))
    cfg.model.update(TINY, backbone=dict(type='SmallConvNet',
                                         channels=(8, 16)))
    torch.manual_seed(1)
    model = MODELS.build(cfg.model)
    torch.save(dict(state_dict=model.state_dict(), meta=dict()), path)
    return model.state_dict()


@pytest.mark.slow
def test_fine_tune_on_easg_from_an_action_genome_checkpoint(tmp_path):
    root = write_easg(tmp_path / 'easg')
    ag = _ag_checkpoint(tmp_path / 'ag.pth')
    work = tmp_path / 'work'
    opts = [f'load_from={tmp_path / "ag.pth"}', 'train_cfg.max_epochs=1',
            'train_cfg.val_interval=1', 'optim_wrapper.optimizer.lr=0.0',
            'model.backbone.channels=(8,16)', 'model.num_classes=6',
            'model.relation_head.num_attention=3',
            'model.relation_head.num_contacting=3',
            'default_hooks.logger.interval=1']
    opts += [f'model.{k}={v}' for k, v in TINY.items()]
    for split in ('train', 'val'):
        opts += [f'{split}_dataloader.dataset.data_root={root}',
                 f'{split}_dataloader.dataset.pipeline.0.scale=(24,32)',
                 f'{split}_dataloader.batch_size=2',
                 f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    run_tool('train.py', str(CONFIGS / 'sttran_predcls_easg.py'),
             '--work-dir', work, '--cfg-options', *opts, timeout=600)
    log = find_one(work, '*.log').read_text()
    assert 'EASGDataset(train, predcls): 2 clips kept' in log
    # the heads of another size, each named with both shapes; the verb
    # head happens to have Action Genome's 3 classes here, so it loads
    line = next(line for line in log.splitlines()
                if 're-initialised (not loaded)' in line)
    for part in ('class_embed.weight checkpoint [37, 8] -> model [6, 8]',
                 'relation_head.spatial.weight checkpoint [6, 32] -> model '
                 '[0, 32]',
                 'relation_head.contacting.bias checkpoint [17] -> model '
                 '[3]'):
        assert part in line, line
    assert 'relation_head.attention' not in line
    scalars = [json.loads(s) for s in find_one(
        work, 'scalars.json').read_text().splitlines()]
    val = [s for s in scalars if 'sg/with_R@20' in s]
    assert val and 0.0 <= val[-1]['sg/with_mR@20'] <= 1.0
    # lr 0: the saved weights are the loaded ones
    state = torch.load(find_one(work, 'epoch_1.pth'), map_location='cpu',
                       weights_only=False)['state_dict']
    for key in ('spatial_encoder.0.attn.qkv.weight', 'pair_fc.weight',
                'relation_head.attention.weight'):
        if key in ag:
            torch.testing.assert_close(state[key], ag[key], msg=key)
    assert torch.equal(state['pair_fc.weight'], ag['pair_fc.weight'])
    assert state['class_embed.weight'].shape == (6, 8)
    assert state['relation_head.contacting.weight'].shape == (3, 32)
