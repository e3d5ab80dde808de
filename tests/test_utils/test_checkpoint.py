"""Checkpoints load with weights_only=True; crafted ones are refused."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from hvlm.utils import CheckpointLoadError, load_from_local


class _RunsCode:
    """Unpickling this would call os.system."""

    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null',))


class _ReachesAttribute:
    """getattr on an allowed class, asking for something dangerous."""

    def __reduce__(self):
        return (getattr, (np.ndarray, 'tofile'))


def test_mmengine_style_checkpoint_loads(tmp_path):
    buffer = HistoryBuffer()
    buffer.update(2.0)
    path = tmp_path / 'ok.pth'
    torch.save(
        dict(
            state_dict=dict(w=torch.ones(2)),
            message_hub=dict(log_scalars=dict(loss=buffer)),
            meta=dict(seed=np.int64(3), arr=np.zeros(3, np.float32)),
            rng=np.random.get_state()), path)
    loaded = CheckpointLoader.load_checkpoint(str(path))
    assert loaded['message_hub']['log_scalars']['loss'].mean() == 2.0
    assert torch.equal(loaded['state_dict']['w'], torch.ones(2))


def test_statistics_load_in_a_fresh_process(tmp_path):
    """HistoryBuffer fills its statistics table on first instantiation; a
    process that loads before creating one must still accept them."""
    buffer = HistoryBuffer()
    buffer.update(1.0)
    path = tmp_path / 'hub.pth'
    torch.save(dict(message_hub=dict(loss=buffer)), path)
    code = ('from hvlm.utils import load_from_local; import sys; '
            'ckpt = load_from_local(sys.argv[1]); '
            'print(ckpt["message_hub"]["loss"].min())')
    out = subprocess.run([sys.executable, '-c', code, str(path)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '1.0'


@pytest.mark.parametrize('payload,expected', [
    (_RunsCode(), 'system'),
    (_ReachesAttribute(), "getattr(<class 'numpy.ndarray'>, 'tofile')"),
])
def test_crafted_checkpoint_is_refused(tmp_path, payload, expected):
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, x=payload), path)
    with pytest.raises(CheckpointLoadError) as err:
        load_from_local(str(path))
    assert str(path) in str(err.value)
    assert expected in str(err.value)


@pytest.mark.parametrize('content,expected', [
    (b'', 'empty'),
    (b'not a checkpoint at all', 'truncated or not a PyTorch checkpoint'),
    (None, 'truncated or not a PyTorch checkpoint'),
    # the first 5000 bytes: torch's zip reader fails with an OSError here
    (5000, 'truncated or not a PyTorch checkpoint'),
])
def test_broken_checkpoint_named(tmp_path, content, expected):
    path = tmp_path / 'broken.pth'
    if content is None or isinstance(content, int):  # a real one, cut
        torch.save(dict(w=torch.randn(1000), v=torch.randn(5000)), path)
        keep = path.stat().st_size // 2 if content is None else content
        content = path.read_bytes()[:keep]
    path.write_bytes(content)
    with pytest.raises(CheckpointLoadError, match=expected) as err:
        load_from_local(str(path))
    assert str(path) in str(err.value)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointLoadError, match='does not exist'):
        load_from_local(str(tmp_path / 'nope.pth'))
