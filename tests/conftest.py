"""Fixtures shared by every test package."""
import pytest

# hvlm first: it loads OpenCV before any test module loads decord (see
# hvlm/__init__.py), as user code should.
import hvlm  # noqa: F401,E402


def _share_the_cores_between_xdist_workers():
    """Under ``pytest -n N`` every worker gets ``cores // N`` threads (at
    least 1), for itself and, through ``OMP_NUM_THREADS``, for the tools it
    runs in subprocesses: N workers with a thread per core each would
    oversubscribe the machine, and OpenMP threads that spin at barriers on a
    busy core make torch several times slower."""
    import os
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT') or 0)
    if not os.environ.get('PYTEST_XDIST_WORKER') or workers < 1:
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    os.environ['OMP_NUM_THREADS'] = os.environ['MKL_NUM_THREADS'] = str(
        threads)
    import torch
    torch.set_num_threads(threads)


_share_the_cores_between_xdist_workers()

# A few seconds of generation; the same arguments as the demo config except
# for the size.
TINY_DEMO_KWARGS = dict(
    seed=0,
    videos_per_domain=dict(training=3, validation=2, test=2),
    frame_size=(48, 64),
    duration=(3.0, 4.0))


@pytest.fixture(scope='session')
def tiny_demo_root(tmp_path_factory) -> str:
    """Root of a tiny generated demo set: ``<root>/{training,validation,
    test}/{videos,annotations}``, 12/8/8 videos of 3-4 s at 48x64, 9-12
    fps, shared read-only by the whole session (copy it to modify it)."""
    from hvlm.datasets import ensure_demo_data
    root = tmp_path_factory.mktemp('hvlm_demo') / 'demo'
    return ensure_demo_data(str(root), workers=1, **TINY_DEMO_KWARGS)


def pytest_sessionfinish(session, exitstatus):
    """Kill child processes a failed test left running: multiprocessing
    joins its live non-daemon children when the interpreter exits, so one
    hung child would keep the suite from ending after its report."""
    import multiprocessing
    for child in multiprocessing.active_children():
        child.kill()
        child.join()


@pytest.fixture(scope='session')
def tiny_clip_dir(tmp_path_factory) -> str:
    """A tiny random CLIP directory (tests/hf_checkpoints.py), shared
    read-only by the session."""
    from tests.hf_checkpoints import save_tiny_model
    path = str(tmp_path_factory.mktemp('tiny_clip'))
    save_tiny_model(path, 'clip')
    return path
