"""The soak benchmark's pieces: resource readings and the growth summary."""
import os
import subprocess
import sys
import time

import pytest

from hvlm.engine.hooks import process_tree_usage
from hvlm.engine.soak import summarize_soak


def test_process_tree_usage_counts_children_and_fds():
    rss, _ = process_tree_usage()
    child = subprocess.Popen(
        [sys.executable, '-c', 'x = bytearray(200 * 2**20); input()'],
        stdin=subprocess.PIPE)
    try:
        deadline = time.time() + 20
        while time.time() < deadline:
            with_child, _ = process_tree_usage()
            if with_child > rss + 150:
                break
            time.sleep(0.1)
        assert with_child > rss + 150  # the child's 200 MB are counted
    finally:
        child.kill()
        child.wait()
    _, before = process_tree_usage()
    r, w = os.pipe()
    try:
        assert process_tree_usage()[1] == before + 2
    finally:
        os.close(r)
        os.close(w)


def test_a_descriptor_open_for_a_moment_is_not_counted(monkeypatch,
                                                        tmp_path):
    """TensorBoard's writer thread appends to its event file now and then;
    a reading that catches it open must not look like a leak (this failed
    CI once: 'open fds 5 -> 6'). Closed between the readings: not held;
    open through all of them: held."""
    import hvlm.engine.hooks.resource_monitor_hook as monitor
    base = monitor.held_fds(os.getpid())
    brief = open(tmp_path / 'events', 'ab')
    monkeypatch.setattr(monitor.time, 'sleep', lambda s: brief.close())
    assert monitor.held_fds(os.getpid()) == base
    kept = open(tmp_path / 'events', 'ab')
    try:
        assert monitor.held_fds(os.getpid()) == base + 1
    finally:
        kept.close()


def test_summary_measures_from_the_end_of_warmup():
    samples = [(50, 100.0, 10), (100, 300.0, 12), (150, 300.0, 12),
               (200, 309.0, 12)]
    result = summarize_soak(samples, warmup=100)
    assert result['rss_mb_after_warmup'] == 300.0
    assert result['rss_growth_pct'] == 3.0
    assert (result['fds_after_warmup'], result['fds_last']) == (12, 12)
    with pytest.raises(ValueError, match='warmup=200'):
        summarize_soak(samples, warmup=200)
