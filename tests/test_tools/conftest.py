"""Run hvlm's tools as a user would: in a subprocess, on tiny data."""
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / 'tests' / 'data' / 'configs' / 'tiny_sports.py')
PLUGIN_DIR = str(REPO / 'tests' / 'data' / 'plugin')


def data_options(root: str) -> List[str]:
    """--cfg-options that point all three splits at ``root``."""
    return [
        f'train_dataloader.dataset.data_root={root}/training',
        f'val_dataloader.dataset.data_root={root}/validation',
        f'test_dataloader.dataset.data_root={root}/test',
    ]


def run_tool(*args, env=None, timeout=300, check=True):
    """Run ``python tools/<args>`` (or a .sh tool) from the repo root."""
    full_env = dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1')
    full_env.update(env or {})
    tool = str(REPO / 'tools' / args[0])
    cmd = ['bash', tool] if tool.endswith('.sh') else [sys.executable, tool]
    # Its own session, so that a timeout kills the whole tree (torchrun and
    # its ranks too), not only the shell at its top.
    proc = subprocess.Popen(
        cmd + [str(a) for a in args[1:]],
        cwd=REPO,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        raise AssertionError(
            f'{args[0]} still running after {timeout} s, killed\nSTDOUT:\n'
            f'{stdout[-6000:]}\nSTDERR:\n{stderr[-6000:]}')
    proc = subprocess.CompletedProcess(proc.args, proc.returncode, stdout,
                                       stderr)
    if check and proc.returncode != 0:
        raise AssertionError(
            f'{args[0]} exited {proc.returncode}\nSTDOUT:\n'
            f'{proc.stdout[-6000:]}\nSTDERR:\n{proc.stderr[-6000:]}')
    return proc


@pytest.fixture
def demo_copy(tiny_demo_root, tmp_path):
    """A private copy of the tiny demo set that a test may damage."""
    root = tmp_path / 'data'
    shutil.copytree(tiny_demo_root, root)
    return str(root)


def find_one(root: Path, pattern: str) -> Path:
    found = sorted(root.rglob(pattern))
    assert found, f'no {pattern} under {root}: {sorted(root.rglob("*"))}'
    return found[-1]
