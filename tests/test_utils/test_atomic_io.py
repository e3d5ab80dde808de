"""Checkpoint writes are atomic; resume finds the newest complete one."""
import errno
import os
import signal
import stat
import subprocess
import sys
import time

import pytest
import torch
from mmengine.fileio import get_file_backend
from mmengine.runner.checkpoint import save_checkpoint

from hvlm.utils import atomic_io
from hvlm.utils.atomic_io import (AtomicLocalBackend, atomic_write_bytes,
                                  checkpoint_problem,
                                  find_resumable_checkpoint,
                                  remove_stale_temp_files)


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


@pytest.mark.parametrize('umask, mode', [(0o022, 0o644), (0o077, 0o600),
                                         (0o002, 0o664)])
def test_files_get_the_mode_open_would_give(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        atomic_write_bytes(tmp_path / 'epoch_1.pth', b'weights')
        with open(tmp_path / 'plain', 'w'):
            pass
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / 'epoch_1.pth').stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / 'plain').stat().st_mode) == mode


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, '-c', 'pass'])
    proc.wait()
    return proc.pid


def test_a_killed_write_leaves_a_temp_file_that_is_removed(tmp_path):
    # a writer killed mid-write leaves its temporary file behind
    code = ('import os, signal, sys\n'
            'from hvlm.utils import atomic_io\n'
            'real = os.fsync\n'
            'def die(fd):\n'
            '    os.kill(os.getpid(), signal.SIGKILL)\n'
            'os.fsync = die\n'
            f'atomic_io.atomic_write_bytes({str(tmp_path)!r} + "/epoch_3.pth",'
            ' b"x" * 4096)\n')
    proc = subprocess.run([sys.executable, '-c', code])
    assert proc.returncode == -signal.SIGKILL
    [left] = [p.name for p in tmp_path.iterdir()]
    assert left.startswith('.epoch_3.pth.') and left.endswith('.tmp')

    host = atomic_io._host()
    alive = tmp_path / f'.epoch_4.pth.{host}.{os.getpid()}.abcd_123.tmp'
    users = [
        '.epoch_3.pth.tmp', f'.epoch_3.pth.{host}.{dead_pid()}.tmp',
        f'epoch_3.pth.{host}.{dead_pid()}.abcd1234.tmp',
        f'.epoch_3.pth.{host}.{dead_pid()}.abcd1234.tmp.bak',
        '.notes.abcdefgh.tmp'
    ]
    for name in users + [alive.name]:
        (tmp_path / name).write_bytes(b'keep me')
    inner = tmp_path / 'sub'
    inner.mkdir()
    (inner / left).write_bytes(b'not in the work dir itself')

    lines = []
    removed = remove_stale_temp_files(str(tmp_path), lines.append)
    assert removed == [str(tmp_path / left)]
    assert len(lines) == 1 and str(tmp_path / left) in lines[0]
    assert 'an unfinished write of epoch_3.pth' in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        users + [alive.name, 'sub'])
    assert (inner / left).exists()


def test_a_foreign_temp_file_is_removed_only_when_old(tmp_path):
    fresh = tmp_path / '.epoch_1.pth.otherhost.12345.abcd1234.tmp'
    old = tmp_path / '.epoch_2.pth.otherhost.12345.abcd1234.tmp'
    fresh.write_bytes(b'being written on another machine')
    old.write_bytes(b'left there')
    long_ago = time.time() - atomic_io.FOREIGN_STALE_AFTER_S - 60
    os.utime(old, (long_ago, long_ago))
    assert remove_stale_temp_files(str(tmp_path), print) == [str(old)]
    assert fresh.exists()
