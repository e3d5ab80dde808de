"""configs/pretrained/vtc_general.py through tools/train.py, its Hugging
Face export, and tools/misc/export_pretrained.py."""
import pytest
import torch
from safetensors.torch import load_file

from .conftest import REPO, data_options, run_tool

CONFIG = str(REPO / 'configs' / 'pretrained' / 'vtc_general.py')
SMALL = [
    'train_cfg.max_epochs=1',
    'train_dataloader.batch_size=4', 'val_dataloader.batch_size=4',
    'test_dataloader.batch_size=4',
    'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
    'test_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.persistent_workers=False',
    'test_dataloader.persistent_workers=False',
    'default_hooks.logger.interval=1',
]
TINY_MODEL = [
    'model.scratch.vision.num_hidden_layers=1',
    'model.scratch.text.num_hidden_layers=1',
]


@pytest.mark.slow
def test_pretrain_export_and_load_back(tiny_demo_root, tmp_path):
    work = tmp_path / 'work'
    proc = run_tool('train.py', CONFIG, '--work-dir', work, '--cfg-options',
                    *data_options(tiny_demo_root), *SMALL, *TINY_MODEL,
                    timeout=600)
    log = proc.stdout + proc.stderr
    assert 'vtc/top1' in log and 'vtc/t2v_R@1' in log
    export = work / 'hf_export'
    assert (export / 'preprocessor_config.json').is_file()
    # the export is the trained model, loadable as any downloaded CLIP
    from hvlm.models.backbones import HFTextEncoder, HFVisionEncoder
    vision, text = HFVisionEncoder(str(export)), HFTextEncoder(str(export))
    assert vision.image_size == (48, 48) and text.eos_token_id == 3
    state = torch.load(work / 'epoch_1.pth', map_location='cpu',
                       weights_only=False)['state_dict']
    saved = load_file(str(export / 'model.safetensors'))
    for key in ('vision_model.encoder.layers.0.mlp.fc1.weight',
                'text_projection.weight'):
        assert torch.equal(saved[key], state['clip.' + key])

    # the tool writes the same weights from the checkpoint
    out = tmp_path / 'again'
    run_tool('misc/export_pretrained.py', CONFIG, work / 'epoch_1.pth',
             '--out', out, '--cfg-options', *TINY_MODEL)
    again = load_file(str(out / 'model.safetensors'))
    assert again.keys() == saved.keys()
    assert all(torch.equal(again[k], saved[k]) for k in saved)
    # a checkpoint of another architecture is refused by name; nothing
    # is written
    bad = run_tool('misc/export_pretrained.py', CONFIG, work / 'epoch_1.pth',
                   '--out', tmp_path / 'bad', check=False)
    assert bad.returncode == 1
    assert 'epoch_1.pth' in bad.stderr and 'layers.1' in bad.stderr
    assert not (tmp_path / 'bad').exists()
    # an existing export is not overwritten without --overwrite
    busy = run_tool('misc/export_pretrained.py', CONFIG, work / 'epoch_1.pth',
                    '--out', out, '--cfg-options', *TINY_MODEL, check=False)
    assert busy.returncode == 1 and 'not empty' in busy.stderr
