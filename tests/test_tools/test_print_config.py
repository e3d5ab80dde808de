"""tools/misc/print_config.py: the config train.py would run, or a named
error."""
import importlib.util

from mmengine.config import Config

from .conftest import REPO, TINY, run_tool

TOOL = REPO / 'tools' / 'misc' / 'print_config.py'


def load_tool():
    spec = importlib.util.spec_from_file_location('print_config', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_prints_and_saves_the_resolved_config(tmp_path):
    saved = tmp_path / 'resolved.py'
    proc = run_tool('misc/print_config.py', TINY, '--cfg-options',
                    'train_cfg.max_epochs=5', 'model.backbone.depths=(2,2)',
                    'optim_wrapper.optimizer.amsgrad=True', '--save-path',
                    saved)
    printed = tmp_path / 'printed.py'
    printed.write_text(proc.stdout)
    cfg = Config.fromfile(str(saved))
    assert Config.fromfile(str(printed)).to_dict() == cfg.to_dict()

    tiny = Config.fromfile(TINY)
    assert tiny.train_cfg.max_epochs == 2 and tiny.model.backbone.depths == (
        1, 1)
    # the options are merged ...
    assert cfg.train_cfg.max_epochs == 5
    assert tuple(cfg.model.backbone.depths) == (2, 2)
    # ... over the whole _base_ chain (hier_sports -> hier_general -> _base_)
    assert cfg.model.backbone.type == tiny.model.backbone.type
    assert cfg.model.head.heads.video_qa.num_answers == 64
    assert cfg.train_dataloader.dataset.domains == ['sports']
    assert cfg.param_scheduler == tiny.param_scheduler
    # train.py's defaults and the runner's vocabulary sharing
    assert cfg.work_dir == './work_dirs/tiny_sports'
    assert cfg.launcher == 'none'
    train_root = cfg.train_dataloader.dataset.data_root
    assert cfg.val_dataloader.dataset.vocab_root == train_root
    assert cfg.test_dataloader.dataset.vocab_root == train_root
    # a key the config does not have is added, with a warning naming it
    assert cfg.optim_wrapper.optimizer.amsgrad is True
    assert ("optim_wrapper.optimizer has no key 'amsgrad', so it is added"
            in proc.stderr)


def test_errors_name_the_file_or_key(tmp_path, capsys):
    tool = load_tool()

    assert tool.main([str(tmp_path / 'missing.py')]) == 2
    err = capsys.readouterr().err
    assert f'config file {tmp_path / "missing.py"} does not exist' in err

    assert tool.main([TINY, '--cfg-options', 'param_scheduler.3.end=2']) == 2
    err = capsys.readouterr().err
    assert '--cfg-options param_scheduler.3.end=2 cannot be merged' in err
    assert 'Index 3 exceeds' in err

    assert tool.main([TINY, '--cfg-options', 'train_cfg.max_epochs.x=1']) == 2
    assert '--cfg-options train_cfg.max_epochs.x=1 cannot be merged' in \
        capsys.readouterr().err

    assert tool.main([
        TINY, '--cfg-options', 'model.backbone.attention.type=FullAtention'
    ]) == 2
    err = capsys.readouterr().err
    assert "model.backbone.attention.type = 'FullAtention' is not a " \
        'registered type; did you mean FullAttention' in err

    assert tool.main([TINY, '--cfg-options', 'model.backbone.embed_dim=8'
                      ]) == 2
    assert "model.backbone.embed_dim: HierarchicalVideoEncoder has no " \
        "argument 'embed_dim'; did you mean 'embed_dims'?" in \
        capsys.readouterr().err

    # the optimizer would reject it after the data is built: named here
    assert tool.main([TINY, '--cfg-options', 'optim_wrapper.optimizer.lrr=0.1'
                      ]) == 2
    err = capsys.readouterr().err
    assert "optim_wrapper.optimizer has no key 'lrr', so it is added; did " \
        "you mean 'lr'?" in err
    assert "optim_wrapper.optimizer.lrr: AdamW has no argument 'lrr'; did " \
        "you mean 'lr'?" in err
