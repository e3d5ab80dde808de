"""tools/train.py on the SceneLLM demo config, as a user runs it, with a tiny
random LM directory and a small generated demo set: the LM's LoRA is frozen
in the first epoch and trains in the second, validation reports R@K, and
the frozen LM leaves the run as it came."""
import json

import pytest
import torch
from safetensors.torch import load_file

from tests.hf_causal_lms import save_tiny_lm
from .conftest import REPO, find_one, run_tool


@pytest.mark.slow
def test_train_scenellm_demo_end_to_end(tmp_path):
    lm = tmp_path / 'lm'
    save_tiny_lm(str(lm), 'llama')
    root = tmp_path / 'ag_demo'
    opts = []
    for split in ('train', 'val'):
        ds = f'{split}_dataloader.dataset'
        opts += [f'{ds}.data_root={root}', f'{ds}.demo.root={root}',
                 f'{ds}.demo.videos=(6,3)',
                 f'{ds}.pipeline.0.scale=(36,48)',
                 f'{split}_dataloader.batch_size=3',
                 f'{split}_dataloader.num_workers=0',
                 f'{split}_dataloader.persistent_workers=False']
    work = tmp_path / 'work'
    run_tool('train.py',
             REPO / 'configs' / 'scene_graph' / 'scenellm_predcls_demo.py',
             '--work-dir', work, '--cfg-options', 'train_cfg.max_epochs=2',
             'train_cfg.val_interval=2', 'model.hidden_dim=32',
             'model.backbone.channels=(8,16)', 'model.codebook_size=16',
             f'model.llm.pretrained={lm}', 'model.freeze_llm_epochs=1',
             'default_hooks.logger.interval=1', *opts, timeout=600)
    log = find_one(work, '*.log').read_text()
    assert "epoch 1: SceneLLM: the LM's LoRA frozen" in log
    assert "epoch 2: SceneLLM: the LM's LoRA trains" in log
    assert 'loss_commitment' in log and 'loss_codebook' in log
    scalars = [json.loads(line) for line in find_one(
        work, 'scalars.json').read_text().splitlines()]
    val = [s for s in scalars if 'sg/with_R@20' in s]
    assert val and 0.0 <= val[-1]['sg/with_mR@20'] <= 1.0

    def state(epoch):
        return torch.load(work / f'epoch_{epoch}.pth', map_location='cpu',
                          weights_only=False)['state_dict']

    first, second = state(1), state(2)
    lora_b = [k for k in first if '.lora_B.' in k]
    assert lora_b
    assert all(not first[k].any() for k in lora_b)
    assert any(second[k].any() for k in lora_b)
    assert bool(second['quantizer.initialised'])
    prefix = 'llm.model.'
    saved = load_file(str(lm / 'model.safetensors'))
    weights = {k[len(prefix):]: v for k, v in second.items()
               if k.startswith(prefix) and 'lora_' not in k}
    assert set(saved) <= set(weights)
    assert all(torch.equal(weights[k], v) for k, v in saved.items())
