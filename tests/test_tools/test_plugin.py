"""A package outside hvlm registers an attention and a config trains with it
(custom_imports + model.backbone.attention=dict(_delete_=True, type=...))."""
from pathlib import Path

from mmengine.config import Config

from hvlm.utils.cli import build_runner

from .conftest import PLUGIN_DIR, REPO, data_options


def test_plugin_attention_trains(tiny_demo_root, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(PLUGIN_DIR)
    cfg = Config.fromfile(
        str(REPO / 'tests/data/configs/tiny_sports_plugin.py'))
    cfg.merge_from_dict(
        dict(
            opt.split('=', 1) for opt in data_options(tiny_demo_root)))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.train_cfg.max_epochs = 1
    assert cfg.model.backbone.attention == dict(type='TheirAttention')

    from hvlm_plugin_example import TheirAttention
    runner = build_runner(cfg)
    runner.train()
    attentions = [
        m for m in runner.model.modules() if isinstance(m, TheirAttention)
    ]
    assert len(attentions) == sum(cfg.model.backbone.depths)
    assert TheirAttention.calls > 0
    assert Path(cfg.work_dir, 'epoch_1.pth').is_file()
