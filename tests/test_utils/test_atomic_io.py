"""Checkpoint writes are atomic; resume finds the newest complete one."""
import errno
import os
import time

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import save_checkpoint

from hvlm.utils.atomic_io import (AtomicLocalBackend, atomic_write_bytes,
                                  checkpoint_problem,
                                  find_resumable_checkpoint)


def test_mmengine_saves_through_the_atomic_backend(tmp_path):
    assert isinstance(get_file_backend(str(tmp_path / 'x.pth')),
                      AtomicLocalBackend)
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint(dict(w=torch.ones(3)), str(path))
    assert checkpoint_problem(str(path)) is None
    assert [p.name for p in tmp_path.iterdir()] == ['epoch_1.pth']


def test_full_disk_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / 'epoch_1.pth'
    atomic_write_bytes(path, b'old and complete')

    real_fsync = os.fsync

    def disk_full(fd):
        real_fsync(fd)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, 'fsync', disk_full)
    with pytest.raises(OSError, match='epoch_1.pth failed .*No space left'):
        atomic_write_bytes(path, b'new' * 1000)
    assert path.read_bytes() == b'old and complete'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['epoch_1.pth']


@pytest.mark.parametrize('damage', ['truncate', 'empty', 'flip_byte'])
def test_resume_skips_a_damaged_newest_checkpoint(tmp_path, damage):
    older, newer = tmp_path / 'epoch_1.pth', tmp_path / 'epoch_2.pth'
    torch.save(dict(w=torch.randn(1000)), older)
    time.sleep(0.01)
    torch.save(dict(w=torch.randn(1000)), newer)
    (tmp_path / 'last_checkpoint').write_text(str(newer))
    data = newer.read_bytes()
    if damage == 'truncate':
        newer.write_bytes(data[:len(data) // 2])
    elif damage == 'empty':
        newer.write_bytes(b'')
    else:  # one corrupted byte inside the tensor data
        i = data.index(b'data/0') + 200
        newer.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:])
    warnings = []
    found, skipped = find_resumable_checkpoint(str(tmp_path),
                                               warnings.append)
    assert found == str(older)
    assert skipped == [str(newer)]
    assert 'epoch_2.pth is' in warnings[0]


def test_resume_with_nothing_to_resume(tmp_path):
    (tmp_path / 'last_checkpoint').write_text('')
    assert find_resumable_checkpoint(str(tmp_path)) == (None, [])
