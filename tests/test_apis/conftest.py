"""A checkpoint of a real (1-epoch) training run of the tiny config, shared
by the inference API tests and the tools/inference.py tests."""
from pathlib import Path

import pytest

from tests.test_tools.conftest import TINY, data_options, run_tool


def tiny_checkpoint_path(tmp_path_factory, demo_root: str) -> Path:
    """Train tests/data/configs/tiny_sports.py for one epoch on the tiny
    demo set with tools/train.py, once per session (the work dir lives in
    the session's base temp dir), and return its checkpoint."""
    work = tmp_path_factory.getbasetemp() / 'inference_tiny_sports'
    ckpt = work / 'epoch_1.pth'
    if not ckpt.is_file():
        run_tool('train.py', TINY, '--work-dir', work, '--cfg-options',
                 *data_options(demo_root), 'train_cfg.max_epochs=1')
    return ckpt


@pytest.fixture(scope='session')
def tiny_checkpoint(tmp_path_factory, tiny_demo_root) -> Path:
    return tiny_checkpoint_path(tmp_path_factory, tiny_demo_root)
