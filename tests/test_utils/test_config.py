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


@pytest.mark.parametrize('value', [-1, 0, 2.5, '3', True, None])
def test_max_epochs_must_be_a_positive_integer(value):
    import warnings
    cfg = Config.fromfile(SPORTS)
    cfg.train_cfg.max_epochs = value
    with pytest.raises(ConfigError) as err, warnings.catch_warnings():
        warnings.simplefilter('error')  # no schedule warning beside it
        check_config(cfg)
    assert str(err.value) == (
        f'invalid config: train_cfg.max_epochs = {value!r}: expected a '
        'positive integer (the number of training epochs)')


def test_iteration_loop_counts_are_checked_together():
    cfg = Config.fromfile(SPORTS)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=0,
                         val_interval=-5)
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    message = str(err.value)
    assert 'train_cfg.max_iters = 0: expected a positive integer' in message
    assert 'train_cfg.val_interval = -5: expected a positive' in message


def test_unknown_optimizer_argument_suggests_from_its_signature():
    cfg = Config.fromfile(SPORTS)
    cfg.optim_wrapper.optimizer.lrr = 0.1
    cfg.optim_wrapper.optimizer.weight_decy = 0.1
    with pytest.raises(ConfigError) as err:
        check_config(cfg)
    message = str(err.value)
    assert ("optim_wrapper.optimizer.lrr: AdamW has no argument 'lrr'; "
            "did you mean 'lr'?") in message
    assert ("optim_wrapper.optimizer.weight_decy: AdamW has no argument "
            "'weight_decy'; did you mean 'weight_decay'?") in message


def test_optimizer_values_torch_rejects_are_named():
    cfg = Config.fromfile(SPORTS)
    cfg.optim_wrapper.optimizer.betas = (1.5, 0.999)
    with pytest.raises(ConfigError,
                       match=r'optim_wrapper\.optimizer: AdamW rejects its '
                       r'arguments: .*beta'):
        check_config(cfg)


def test_optimizer_params_are_the_constructors():
    cfg = Config.fromfile(SPORTS)
    cfg.optim_wrapper.optimizer.params = []
    with pytest.raises(ConfigError, match="AdamW has no argument 'params'"):
        check_config(cfg)


def test_optim_wrapper_arguments_are_checked():
    cfg = Config.fromfile(SPORTS)
    cfg.optim_wrapper.clip_gard = dict(max_norm=1.0)
    with pytest.raises(ConfigError,
                       match=r"optim_wrapper\.clip_gard: OptimWrapper has no "
                       r"argument 'clip_gard'; did you mean 'clip_grad'"):
        check_config(cfg)
    cfg = Config.fromfile(SPORTS)
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.loss_scale = 'dynamic'
    check_config(cfg)


def test_each_wrapper_of_a_multi_optimizer_config_is_checked():
    cfg = Config.fromfile(SPORTS)
    good = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.1))
    cfg.optim_wrapper = dict(
        constructor='MultiOptimWrapperConstructor',
        backbone=good,
        head=dict(good, optimizer=dict(type='SGD', lr=0.1, momentun=0.9)))
    with pytest.raises(ConfigError,
                       match=r"optim_wrapper\.head\.optimizer\.momentun: SGD "
                       r"has no argument 'momentun'; did you mean "
                       r"'momentum'"):
        check_config(cfg)


def test_custom_optim_wrapper_constructor_reads_its_own_keys():
    cfg = Config.fromfile(SPORTS)
    cfg.optim_wrapper.constructor = 'LearningRateDecayOptimWrapperConstructor'
    cfg.optim_wrapper.optimizer.layer_decay_rate = 0.75
    cfg.optim_wrapper.paramwise_cfg = dict(layer_decay_rate=0.75)
    check_config(cfg)


def test_unknown_scheduler_argument_is_named():
    cfg = Config.fromfile(SPORTS)
    cfg.param_scheduler[1].eta_minn = 0.0
    with pytest.raises(ConfigError,
                       match=r"param_scheduler\[1\]\.eta_minn: "
                       r"CosineAnnealingLR has no argument 'eta_minn'; did "
                       r"you mean 'eta_min'"):
        check_config(cfg)


def test_schedule_longer_than_training_warns():
    import warnings
    cfg = Config.fromfile(SPORTS)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        check_config(cfg)  # the shipped schedule fits its 30 epochs
    cfg.merge_from_dict({'train_cfg.max_epochs': 5})
    with pytest.warns(UserWarning) as record:
        check_config(cfg)
    (message, ) = [str(w.message) for w in record
                   if 'param_scheduler' in str(w.message)]
    assert message.startswith(
        'param_scheduler[1] (CosineAnnealingLR) ends at epoch 30 but '
        'train_cfg.max_epochs = 5: the schedule is cut off; set '
        'param_scheduler.1.end=5')


def test_iteration_schedule_against_max_iters():
    cfg = Config.fromfile(SPORTS)
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=100)
    cfg.param_scheduler = [
        dict(type='LinearLR', by_epoch=False, begin=0, end=50),
        dict(type='CosineAnnealingLR', by_epoch=False, begin=50, end=1000,
             T_max=950),
    ]
    with pytest.warns(UserWarning, match=r'param_scheduler\[1\] '
                      r'\(CosineAnnealingLR\) ends at iteration 1000 but '
                      r'train_cfg\.max_iters = 100'):
        check_config(cfg)


def test_optimizers_outside_torch_optim_are_not_built():
    cfg = Config.fromfile(SPORTS)
    # needs a process group to be built; its arguments are still checked
    cfg.optim_wrapper.optimizer = dict(
        type='ZeroRedundancyOptimizer', optimizer_type='AdamW', lr=1e-3)
    check_config(cfg)
