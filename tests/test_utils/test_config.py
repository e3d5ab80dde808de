"""Config mistakes are named before anything trains."""
from pathlib import Path

import pytest
from mmengine.config import Config

from hvlm.utils.config import (ConfigError, check_config, iter_types,
                               share_vocabulary)

REPO = Path(__file__).resolve().parents[2]
SPORTS = str(REPO / 'configs' / 'hier_sports.py')


def test_shipped_configs_pass():
    for path in (str(REPO / 'configs' / 'hier_general.py'), SPORTS):
        check_config(Config.fromfile(path))


def test_unknown_type_names_key_and_suggests():
    cfg = Config.fromfile(SPORTS)
    cfg.model.backbone.attention = dict(type='FullAtention')
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    message = str(err.value)
    assert 'model.backbone.attention.type' in message
    assert "'FullAtention'" in message
    assert 'FullAttention' in message.split('did you mean')[1]


def test_unknown_type_in_list_named_with_index():
    cfg = Config.fromfile(SPORTS)
    cfg.train_dataloader.dataset.pipeline[1].type = 'SampleFrame'
    with pytest.raises(ConfigError,
                       match=r'train_dataloader\.dataset\.pipeline\[1\]\.type'):
        check_config(cfg)


def test_misspelled_top_level_key_warns():
    cfg = Config.fromfile(SPORTS)
    cfg.trian_dataloader = dict(batch_size=1)
    with pytest.warns(UserWarning, match='did you mean "train_dataloader"'):
        check_config(cfg)


def test_iter_types_skips_classes():
    found = list(iter_types(dict(a=dict(type='X', b=[dict(type=int)]))))
    assert found == [('a.type', 'X')]


def test_share_vocabulary_follows_train_root():
    cfg = Config.fromfile(SPORTS)
    cfg.merge_from_dict({'train_dataloader.dataset.data_root': '/d/training'})
    share_vocabulary(cfg)
    assert cfg.val_dataloader.dataset.vocab_root == '/d/training'
    assert cfg.test_dataloader.dataset.vocab_root == '/d/training'


def test_unknown_arguments_named_with_path_before_building():
    cfg = Config.fromfile(SPORTS)
    cfg.model.backbone.depth = (1, 1)  # typo of depths
    cfg.train_dataloader.dataset.domain = ['sports']  # through **kwargs
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    message = str(err.value)
    assert ("model.backbone.depth: HierarchicalVideoEncoder has no argument "
            "'depth'; did you mean 'depths'?") in message
    assert "train_dataloader.dataset.domain: VideoDataset" in message
    assert "did you mean 'domains'?" in message


def test_builder_keys_are_not_flagged():
    cfg = Config.fromfile(SPORTS)
    cfg.optim_wrapper.paramwise_cfg = dict(norm_decay_mult=0.)
    cfg.param_scheduler[0].convert_to_iter_based = True
    check_config(cfg)


def test_accepted_arguments_follow_kwargs_up_the_hierarchy():
    from hvlm.utils.config import accepted_arguments

    class Base:

        def __init__(self, a, b=1):
            pass

    class Child(Base):

        def __init__(self, c, **kwargs):
            super().__init__(**kwargs)

    class Open:

        def __init__(self, **kwargs):
            pass

    assert accepted_arguments(Child) == {'a', 'b', 'c'}
    assert accepted_arguments(Open) is None
