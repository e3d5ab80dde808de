"""tools/train.py (and tools/test.py's steps) on a recognition config, as
a user runs them: a tiny CLIP directory and a tiny UCF-101 in its distributed
layout, pointed at with --cfg-options and the original's option keys."""
import re

import pytest
import torch
from safetensors.torch import load_file

from tests.hf_checkpoints import save_tiny_model
from tests.recognition_data import write_ucf
from .conftest import REPO, find_one, run_tool

CONFIG = str(REPO / 'configs' / 'recognition' / 'dual_coop_ucf101_16shot.py')


def ucf_options(paths):
    out = []
    for loader, split in (('train', 'train'), ('val', 'test'),
                          ('test', 'test')):
        ds = f'{loader}_dataloader.dataset'
        out += [f'{ds}.data_root={paths["videos"]}',
                f'{ds}.ann_file={paths[split]}',
                f'{ds}.class_index={paths["class_index"]}']
    return out


@pytest.mark.slow
def test_train_then_test_dual_coop_on_tiny_ucf(tmp_path):
    pretrained = tmp_path / 'clip'
    save_tiny_model(str(pretrained), 'clip')
    paths = write_ucf(str(tmp_path / 'ucf'))  # 4 classes, 3 + 1 videos
    work = tmp_path / 'work'
    options = [
        f'model.pretrained={pretrained}', *ucf_options(paths),
        # the original's keys, as a user would override them
        'K_train=2', 'K_val=None', 'batch_size=2', 'num_workers=0',
        'batches_per_backprop=2', 'ctx_len=4', 'num_temporal_views=2',
        'videomix_type=spatial', 'temporal_pooling=attention',
        'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1'
    ]
    run_tool('train.py', CONFIG, '--work-dir', work, '--cfg-options',
             *options, timeout=600)
    log = find_one(work, '*.log').read_text()
    # K_train=2 of 4 classes, batch 2: four iterations
    assert 'Epoch(train) [1][4/4]' in log
    assert re.search(r'recog/top1: [0-9.]+', log)
    assert 'recog/mean_class_acc' in log
    state = torch.load(work / 'epoch_1.pth', map_location='cpu',
                       weights_only=False)['state_dict']
    assert state['prompt_learner.ctx'].shape == (4, 32)
    assert state['prompt_learner.visual_ctx'].shape == (2, 8, 32)
    saved = load_file(str(pretrained / 'model.safetensors'))
    for name, value in saved.items():  # CLIP is the saved one after training
        key = 'image_encoder.model.' + name
        if key in state:
            assert torch.equal(state[key], value), name
    # tools/test.py's steps, in this process (a second interpreter start
    # would double the test's time)
    from mmengine.config import Config
    from hvlm.utils.cli import build_runner, merge_test_args, parse_test_args
    args = parse_test_args([CONFIG, str(work / 'epoch_1.pth'), '--work-dir',
                            str(tmp_path / 'test'), '--cfg-options',
                            *options])
    metrics = build_runner(merge_test_args(Config.fromfile(CONFIG),
                                           args)).test()
    assert metrics['recog/top5'] == 1.0  # 4 classes
    assert 0 <= metrics['recog/mean_class_acc'] <= 1
    # the seed summary reads the same numbers back from the test's log
    from hvlm.analysis import read_test_metrics
    logged = read_test_metrics(str(tmp_path / 'test'))
    assert logged == pytest.approx(
        {k: v for k, v in metrics.items() if k.startswith('recog/')},
        abs=1e-4)
