"""A data directory that changes under a running job: the run finishes,
names and counts what it could not read, and writes loadable checkpoints."""
import os
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from hvlm.utils import load_from_local
from .conftest import PLUGIN_DIR, REPO, data_options, find_one, run_tool

CONFIG = str(REPO / 'tests/data/configs/tiny_sports_data_faults.py')
REPORT = re.compile(r'(train|val)\b[^:\n]*: skipped (\d+) unreadable video '
                    r'clip\(s\) from (\d+) file\(s\)[^\n]*\n((?:  .*\n?)*)')


def reports(log: str, mode: str):
    """``(count, {file name: reason})`` of each ``mode`` epoch report."""
    found = []
    for kind, count, files, lines in REPORT.findall(log):
        if kind == mode:
            named = dict(
                line.strip().split(': ', 1) for line in lines.splitlines())
            assert len(named) == int(files), lines
            found.append((int(count), {Path(k).name: v
                                       for k, v in named.items()}))
    return found


@pytest.mark.slow
def test_files_changing_under_training(demo_copy, tmp_path):
    faults = Config.fromfile(
        CONFIG, import_custom_modules=False).custom_hooks[0]
    root = Path(demo_copy)
    before = {p.relative_to(root) for p in root.rglob('*') if p.is_file()}
    work = tmp_path / 'work'
    proc = run_tool(
        'train.py',
        CONFIG,
        '--work-dir',
        work,
        '--cfg-options',
        *data_options(demo_copy),
        env=dict(PYTHONPATH=os.pathsep.join(
            [PLUGIN_DIR, os.environ.get('PYTHONPATH', '')])),
        timeout=300)
    log = find_one(work, '*.log').read_text()
    assert 'DataDirFaultHook: before epoch 2' in log

    # The files hit before epoch 2 are reported, by name, in epochs 2 and 3
    # (epoch 1 read an intact directory); every training video is drawn
    # once per epoch, and a bad one is replaced by another draw, which may
    # be bad again: at least one skip per bad file.
    train_bad = {
        Path(f).name
        for f in faults.delete + faults.truncate if f.startswith('training')
    }
    train = reports(log, 'train')
    assert len(train) == 2, train
    for count, named in train:
        assert set(named) == train_bad
        assert count >= len(train_bad)
    for name in faults.delete:
        if name.startswith('training'):
            assert 'does not exist' in train[0][1][Path(name).name]
    # validation (test mode: no redraw) skips the deleted video once per
    # epoch, in epochs 2 and 3
    val_bad = {
        Path(f).name
        for f in faults.delete if f.startswith('validation')
    }
    val = reports(log, 'val')
    assert len(val) == 2, val
    for count, named in val:
        assert set(named) == val_bad and count == len(val_bad)
    # the replaced video is a valid one: read, never skipped
    out = proc.stdout + proc.stderr
    for name in faults.replace:
        assert f'Skipping unreadable video {root / name}' not in out

    # hvlm wrote nothing into the data directory
    after = {p.relative_to(root) for p in root.rglob('*') if p.is_file()}
    assert after == (before - {Path(f) for f in faults.delete}) | {
        Path(f) for f in faults.add}

    for epoch in (1, 2, 3):
        ckpt = load_from_local(str(work / f'epoch_{epoch}.pth'))
        assert ckpt['meta']['epoch'] == epoch
        assert all(v.isfinite().all() for v in ckpt['state_dict'].values()
                   if v.is_floating_point())
    assert 'Traceback' not in proc.stderr
    # and the weights did train across the damaged epochs
    first = load_from_local(str(work / 'epoch_1.pth'))['state_dict']
    assert any(not torch.equal(v, first[k])
               for k, v in ckpt['state_dict'].items())
