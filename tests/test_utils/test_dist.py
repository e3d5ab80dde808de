"""hvlm.utils.dist: the launcher environment, and the tools closing the
process group they ran in."""
import gc
import importlib.util
import warnings
import weakref
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn

from hvlm.utils.dist import close_dist, gloo_threads, launcher_env
from tests.dist_helpers import run_two_ranks

TOOLS = Path(__file__).parents[2] / 'tools'


def load_tool(name):
    spec = importlib.util.spec_from_file_location(f'hvlm_tool_{name}',
                                                  TOOLS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_group(tmp_path):
    dist.init_process_group(
        backend='gloo',
        init_method=f'file://{tmp_path / "store"}',
        rank=0,
        world_size=1)


@pytest.fixture
def no_group():
    yield
    if dist.is_initialized():  # a failed test must not leak its group
        dist.destroy_process_group()


def test_launcher_env_names_missing_variables(monkeypatch):
    monkeypatch.delenv('RANK', raising=False)
    monkeypatch.setenv('WORLD_SIZE', '2')
    with pytest.raises(RuntimeError, match=r"\['RANK'\].*torchrun"):
        launcher_env('pytorch')
    with pytest.raises(ValueError, match="launcher='lsf'"):
        launcher_env('lsf')


def test_close_dist_destroys_the_group_once(tmp_path, no_group):
    assert close_dist() is False  # nothing to close
    start_group(tmp_path)
    assert dist.is_initialized()
    assert close_dist() is True
    assert not dist.is_initialized()
    assert close_dist() is False


@pytest.mark.parametrize('tool,method', [('train', 'train'),
                                         ('test', 'test')])
def test_tools_close_the_group_after_the_run(tool, method, tmp_path,
                                             monkeypatch, no_group):
    """tools/train.py and tools/test.py drop the Runner (its DDP wrapper
    holds the process group) and then close the group once the run has
    finished: mmengine leaves it alive, and a process exiting with a live
    gloo group can abort at shutdown."""
    module = load_tool(tool)
    ran, runners = [], []

    class Runner:

        def run(self):
            start_group(tmp_path)  # what the Runner's launcher does
            ran.append(dist.is_initialized())

    def build_runner(cfg):
        runner = Runner()
        setattr(runner, method, runner.run)
        runners.append(weakref.ref(runner))
        return runner

    def checked_close_dist():
        gc.collect()
        ran.append(runners[0]() is None)  # the tool no longer holds it
        return close_dist()

    monkeypatch.setattr(module, 'build_runner', build_runner)
    monkeypatch.setattr(module, 'close_dist', checked_close_dist)
    monkeypatch.setattr(module, 'register_all_modules', lambda **kw: None)
    monkeypatch.setattr(module.Config, 'fromfile', lambda path: None)
    merge = f'merge_{tool}_args'
    monkeypatch.setattr(module, merge, lambda cfg, args: cfg)
    argv = ['config.py'] + (['model.pth'] if tool == 'test' else [])
    module.main(argv)
    assert ran == [True, True]
    assert not dist.is_initialized()


class FinishedRun:
    """Stands for a Runner after ``train()``: a DDP model, and a reference
    cycle (mmengine's Runner has them) so that only the garbage collector
    frees it."""

    def __init__(self):
        self.model = nn.parallel.DistributedDataParallel(nn.Linear(3, 1))
        self.me = self


def _teardown_worker(rank, port, keep_model, results):
    dist.init_process_group(
        'gloo',
        init_method=f'tcp://127.0.0.1:{port}',
        rank=rank,
        world_size=2)
    run = FinishedRun()
    run.model(torch.randn(2, 3)).sum().backward()
    # The last collective of an epoch in mmengine's hooks: its tensors are
    # released by a gloo worker once Python has let them go.
    gathered = [None, None]
    dist.all_gather_object(gathered, rank)
    # Counted now: a thread takes its name once it has started running.
    started = gloo_threads()
    kept = run.model if keep_model else None
    del run
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        closed = close_dist()
    results.put((rank, started, closed, gloo_threads(), gathered,
                 [str(w.message) for w in caught]))
    del kept


@pytest.mark.parametrize('keep_model', [False, True])
def test_close_dist_ends_gloos_threads_before_exit(keep_model):
    """Two ranks finish a DDP step and an all_gather_object; once the
    finished run is unreachable, close_dist leaves no gloo thread alive to
    meet the interpreter's shutdown. A DDP model still referenced keeps the
    group alive: close_dist says so."""
    if gloo_threads() is None:
        pytest.skip('threads are listed from /proc (Linux)')
    for reported in run_two_ranks(_teardown_worker, keep_model):
        rank, started, closed, left, gathered, caught = reported
        assert started >= 1, (rank, started)
        assert closed is True
        assert gathered == [0, 1]
        if keep_model:
            assert left >= 1, (rank, left)
            assert len(caught) == 1 and 'still holds the group' in caught[0]
        else:
            assert left == 0, (rank, left, caught)
            assert caught == []
