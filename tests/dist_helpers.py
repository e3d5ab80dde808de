"""Helpers for tests that start process groups of their own."""
import socket
import time

import pytest
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def join_or_kill(ranks, timeout_s):
    """Join spawned ranks; kill them and fail, naming the ranks still
    alive, if they outlive ``timeout_s`` (a hang must fail this test, not
    stall the suite: pytest would wait on live non-daemon children at exit).
    """
    deadline = time.monotonic() + timeout_s
    while not ranks.join(timeout=1):
        if time.monotonic() > deadline:
            alive = [i for i, p in enumerate(ranks.processes) if p.is_alive()]
            for p in ranks.processes:
                p.kill()
                p.join()
            pytest.fail(f'ranks {alive} still running after {timeout_s} s')


def run_two_ranks(worker, *args, timeout_s=120):
    """Run ``worker(rank, port, *args, results)`` in two spawned processes
    and return what each put on ``results``, in arrival order.

    Spawn, not fork: a child forked from a process whose torch thread pools
    are running can deadlock before it starts (seen in the full suite).
    """
    results = mp.get_context('spawn').SimpleQueue()
    ranks = mp.start_processes(
        worker,
        args=(free_port(), *args, results),
        nprocs=2,
        join=False,
        start_method='spawn')
    join_or_kill(ranks, timeout_s=timeout_s)
    return [results.get(), results.get()]
