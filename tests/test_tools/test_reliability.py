"""Fault injection: a training run killed at a random point resumes with
nothing lost, and ends where an uninterrupted run ends."""
import os
import random
import signal
import subprocess
import sys
import time

import torch

from .conftest import PLUGIN_DIR, REPO, TINY, data_options, run_tool


def load(path):
    return torch.load(path, map_location='cpu', weights_only=False)


def test_sigkill_then_resume_matches_uninterrupted(tiny_demo_root, tmp_path):
    opts = [*data_options(tiny_demo_root), 'train_cfg.max_epochs=4']
    straight, killed = tmp_path / 'straight', tmp_path / 'killed'
    run_tool('train.py', TINY, '--work-dir', straight, '--deterministic',
             '--cfg-options', *opts)

    proc = subprocess.Popen(
        [
            sys.executable,
            str(REPO / 'tools' / 'train.py'), TINY, '--work-dir',
            str(killed), '--deterministic', '--cfg-options', *opts
        ],
        cwd=REPO,
        env=dict(os.environ, OMP_NUM_THREADS='1'),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True)
    deadline = time.time() + 120
    while not (killed / 'epoch_1.pth').exists():
        assert proc.poll() is None, 'training ended before its first save'
        assert time.time() < deadline
        time.sleep(0.05)
    # somewhere in epochs 2-3: mid-iteration, mid-validation or mid-save
    time.sleep(random.Random().uniform(0.0, 1.5))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    proc = run_tool('train.py', TINY, '--work-dir', killed, '--resume',
                    '--deterministic', '--cfg-options', *opts)
    assert '--resume: resuming from' in proc.stdout + proc.stderr
    assert not list(killed.glob('.*.tmp')), 'a partial file was left'

    a, b = load(straight / 'epoch_4.pth'), load(killed / 'epoch_4.pth')
    assert a['meta']['iter'] == b['meta']['iter']
    for key, value in a['state_dict'].items():
        torch.testing.assert_close(b['state_dict'][key], value, msg=key)


def test_resume_removes_what_a_killed_save_left(tiny_demo_root, tmp_path):
    """A save killed mid-write leaves its temporary file; the next run
    deletes it (and names it), and keeps the user's files."""
    from hvlm.utils.atomic_io import _host
    work = tmp_path / 'work'
    work.mkdir()
    gone = subprocess.Popen([sys.executable, '-c', 'pass'])
    gone.wait()
    left = work / f'.epoch_2.pth.{_host()}.{gone.pid}.k3x_9q2a.tmp'
    left.write_bytes(b'half a checkpoint')
    mine = [work / '.epoch_2.pth.tmp', work / 'epoch_2.pth.bak.tmp']
    for path in mine:
        path.write_bytes(b'the user\'s')
    proc = run_tool('train.py', TINY, '--work-dir', work, '--resume',
                    '--cfg-options', *data_options(tiny_demo_root),
                    'train_cfg.max_epochs=1')
    assert f'removed {left} (17 bytes)' in proc.stdout + proc.stderr
    assert not left.exists()
    assert all(path.exists() for path in mine)
    assert (work / 'epoch_1.pth').is_file()


def test_resume_falls_back_past_a_corrupt_checkpoint(tiny_demo_root,
                                                     tmp_path):
    work = tmp_path / 'work'
    opts = data_options(tiny_demo_root)
    run_tool('train.py', TINY, '--work-dir', work, '--cfg-options', *opts)
    newest = work / 'epoch_2.pth'
    newest.write_bytes(newest.read_bytes()[:1000])  # a save cut short
    proc = run_tool('train.py', TINY, '--work-dir', work, '--resume',
                    '--cfg-options', *opts, 'train_cfg.max_epochs=3')
    out = proc.stdout + proc.stderr
    assert 'epoch_2.pth is truncated' in out
    assert 'resumed epoch: 1' in out
    assert load(work / 'epoch_3.pth')['meta']['epoch'] == 3


def test_dead_rank_ends_the_job_quickly(tiny_demo_root, tmp_path):
    """Rank 1 is SIGKILLed at iteration 2: rank 0 must not hang in a
    collective; the launcher ends the job with an error naming the rank."""
    config = str(REPO / 'tests/data/configs/tiny_sports_kill_rank1.py')
    start = time.time()
    proc = run_tool(
        'dist_train.sh',
        config,
        2,
        '--work-dir',
        tmp_path / 'work',
        '--cfg-options',
        *data_options(tiny_demo_root),
        env=dict(PORT='29531', PYTHONPATH=PLUGIN_DIR),
        timeout=240,
        check=False)
    elapsed = time.time() - start
    assert proc.returncode != 0
    assert elapsed < 180, f'took {elapsed:.0f}s to notice the dead rank'
    out = proc.stdout + proc.stderr
    assert 'SIGKILL' in out and 'local_rank: 1' in out


def test_soak_tool_runs_and_reports(tiny_demo_root, tmp_path):
    out = tmp_path / 'soak.json'
    proc = run_tool('analysis_tools/benchmark_soak.py', TINY, '--iters', 20,
                    '--warmup', 5, '--interval', 5, '--work-dir',
                    tmp_path / 'work', '--out-json', out, '--max-growth',
                    1000, '--cfg-options', *data_options(tiny_demo_root))
    assert 'PASS' in proc.stdout
    import json
    result = json.loads(out.read_text())
    assert result['last_iter'] == 20 and len(result['samples']) == 4


def test_dead_dataloader_worker_is_named_with_its_file(tiny_demo_root,
                                                       tmp_path):
    proc = run_tool(
        'train.py',
        str(REPO / 'tests/data/configs/tiny_sports_kill_worker.py'),
        '--work-dir',
        tmp_path / 'work',
        '--cfg-options',
        *data_options(tiny_demo_root),
        env=dict(PYTHONPATH=PLUGIN_DIR),
        timeout=240,
        check=False)
    assert proc.returncode != 0
    assert 'is killed by signal' in proc.stderr
    assert 'was loading' in proc.stderr
    assert 'sports_training_0001.mp4' in proc.stderr
