"""tools/train.py and tools/test.py with a pretrained stem, the way a user
runs them: the shipped config and the one documented override."""
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.hf_checkpoints import save_tiny_model
from .conftest import REPO, data_options, find_one, run_tool

CONFIG = str(REPO / 'configs' / 'pretrained' / 'hier_sports_clip-vitb16.py')
# Only the schedule and loaders shrink; the model is the config's.
SMALL = [
    'train_cfg.max_epochs=1',
    'train_dataloader.batch_size=2', 'val_dataloader.batch_size=2',
    'test_dataloader.batch_size=2',
    'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0',
    'test_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.persistent_workers=False',
    'test_dataloader.persistent_workers=False',
    'default_hooks.logger.interval=1',
]


@pytest.mark.slow
def test_train_then_test_on_a_tiny_clip(tiny_demo_root, tmp_path):
    pretrained = tmp_path / 'tiny_clip'
    save_tiny_model(str(pretrained), 'clip')
    work = tmp_path / 'work'
    run_tool('train.py', CONFIG, '--work-dir', work, '--cfg-options',
             f'model.backbone.stem.pretrained={pretrained}',
             *data_options(tiny_demo_root), *SMALL, timeout=600)
    log = find_one(work, '*.log').read_text()
    assert 'action/frame_top1' in log
    # the frozen ViT is the saved one, bit for bit, after a training epoch
    assert frozen_tower_is_the_saved_one(work, pretrained)
    state = torch.load(work / 'epoch_1.pth', map_location='cpu',
                       weights_only=False)['state_dict']
    assert state['backbone.patch_embed.proj.weight'].shape == (384, 32)
    assert 'frames of (224, 224) are resized to (32, 32)' in log

    # the config the run wrote has the directory filled in: inference
    # builds from it and the checkpoint fits exactly
    from hvlm.apis import inference_video, init_model
    dumped = work / 'hier_sports_clip-vitb16.py'
    assert str(pretrained) in dumped.read_text()
    model = init_model(dumped, work / 'epoch_1.pth')
    video = find_one(Path(tiny_demo_root) / 'test', '*.mp4')
    result = inference_video(model, video, task='action_detection',
                             progress=False)
    assert result['num_clips'] >= 1 and 'action_detection' in result

    proc = run_tool('test.py', CONFIG, work / 'epoch_1.pth', '--work-dir',
                    tmp_path / 'test', '--cfg-options',
                    f'model.backbone.stem.pretrained={pretrained}',
                    *data_options(tiny_demo_root), *SMALL, timeout=600)
    assert 'action/frame_top1' in proc.stdout + proc.stderr


def frozen_tower_is_the_saved_one(work, pretrained):
    state = torch.load(work / 'epoch_1.pth', map_location='cpu',
                       weights_only=False)['state_dict']
    saved = load_file(str(pretrained / 'model.safetensors'))
    prefix = 'backbone.patch_embed.encoder.model.'
    vision = {k[len(prefix):]: v for k, v in state.items()
              if k.startswith(prefix)}
    # transformers 5 names a SigLIP tower's weights without its prefix
    refs = [saved.get(k, saved.get('vision_model.' + k)) for k in vision]
    return bool(vision) and all(
        ref is not None and torch.equal(v, ref)
        for v, ref in zip(vision.values(), refs))


@pytest.mark.slow
def test_amp_on_cpu_with_a_tiny_siglip(tiny_demo_root, tmp_path):
    """--amp: bfloat16 autocast around the frozen tower and the stages
    (HVLM_CPU_AMP=1 forces it where this CPU runs bfloat16 slowly)."""
    pretrained = tmp_path / 'tiny_siglip'
    save_tiny_model(str(pretrained), 'siglip')
    work = tmp_path / 'work'
    run_tool('train.py', CONFIG, '--amp', '--work-dir', work,
             '--cfg-options', f'model.backbone.stem.pretrained={pretrained}',
             *data_options(tiny_demo_root), *SMALL,
             env=dict(HVLM_CPU_AMP='1'), timeout=600)
    log = find_one(work, '*.log').read_text()
    assert "type='AmpOptimWrapper'" in log
    assert 'action/frame_top1' in log
    assert frozen_tower_is_the_saved_one(work, pretrained)


def test_config_without_a_directory_says_which_key(tiny_demo_root,
                                                   tmp_path):
    proc = run_tool('train.py', CONFIG, '--work-dir', tmp_path / 'work',
                    '--cfg-options', *data_options(tiny_demo_root), *SMALL,
                    check=False, timeout=300)
    assert proc.returncode != 0
    assert 'model.backbone.stem.pretrained=DIR' in proc.stderr
