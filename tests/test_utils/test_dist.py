"""hvlm.utils.dist: the launcher environment, and the tools closing the
process group they ran in."""
import importlib.util
from pathlib import Path

import pytest
import torch.distributed as dist

from hvlm.utils.dist import close_dist, launcher_env

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
    """tools/train.py and tools/test.py destroy the process group the
    Runner ran in once the run has finished (mmengine leaves it alive, and
    a process exiting with a live gloo group can abort at shutdown)."""
    module = load_tool(tool)
    ran = []

    class Runner:

        def run(self):
            start_group(tmp_path)  # what the Runner's launcher does
            ran.append(dist.is_initialized())

    runner = Runner()
    setattr(runner, method, runner.run)
    monkeypatch.setattr(module, 'build_runner', lambda cfg: runner)
    monkeypatch.setattr(module, 'register_all_modules', lambda **kw: None)
    monkeypatch.setattr(module.Config, 'fromfile', lambda path: None)
    merge = f'merge_{tool}_args'
    monkeypatch.setattr(module, merge, lambda cfg, args: cfg)
    argv = ['config.py'] + (['model.pth'] if tool == 'test' else [])
    module.main(argv)
    assert ran == [True]
    assert not dist.is_initialized()
