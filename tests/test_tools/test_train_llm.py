"""configs/llm/ end to end as a user runs them: the demo LM trained on the
demo text by tools/misc/train_demo_lm.py, then tools/train.py with the
stage-2 config (projector alone for an epoch, then LoRA) on a tiny
override."""
import importlib.util

import pytest
import torch
from safetensors.torch import load_file

from .conftest import REPO, data_options, find_one, run_tool

TINY = str(REPO / 'tests' / 'data' / 'configs' / 'tiny_llm.py')


@pytest.mark.slow
def test_demo_lm_then_two_training_stages(tiny_demo_root, tmp_path):
    lm = tmp_path / 'demo_lm'
    # the tool's main() in this process: its start-up costs more than its
    # 10 training steps
    spec = importlib.util.spec_from_file_location(
        'train_demo_lm', REPO / 'tools' / 'misc' / 'train_demo_lm.py')
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main([TINY, '--out', str(lm), '--steps', '10',
                      '--pack', '64', '--hidden-size', '32',
                      '--batch-size', '8',
                      '--cfg-options',
                      *data_options(tiny_demo_root)[:1]]) == 0
    assert (lm / 'config.json').is_file()
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(str(lm), local_files_only=True)
    # trained on the demo text: the prompt's words are single tokens
    assert len(tokenizer('question: what')['input_ids']) == 3
    work = tmp_path / 'work'
    run_tool('train.py', TINY, '--work-dir', work, '--cfg-options',
             f'model.head.heads.language.llm.pretrained={lm}',
             *data_options(tiny_demo_root), timeout=600)
    log = find_one(work, '*.log').read_text()
    assert 'qa/top1' in log and 'caption/CIDEr' in log
    assert "epoch 1: head.heads.language: the LM's LoRA frozen" in log
    assert "epoch 2: head.heads.language: the LM's LoRA trains" in log

    def state(epoch):
        return torch.load(work / f'epoch_{epoch}.pth', map_location='cpu',
                          weights_only=False)['state_dict']

    prefix = 'head.heads.language.llm.model.'
    lora_b = [k for k in state(1) if '.lora_B.' in k]
    assert lora_b
    # stage 1 left LoRA at its start (B = 0); stage 2 trained it
    assert all(not state(1)[k].any() for k in lora_b)
    assert any(state(2)[k].any() for k in lora_b)
    # the frozen LM is the saved one, bit for bit
    saved = load_file(str(lm / 'model.safetensors'))
    weights = {k[len(prefix):]: v for k, v in state(2).items()
               if k.startswith(prefix) and 'lora_' not in k}
    assert weights and all(torch.equal(v, saved[k])
                           for k, v in weights.items() if k in saved)
