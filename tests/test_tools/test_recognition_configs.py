"""Every recognition config loads, passes the config checks and builds its
model on a tiny CLIP; the original's option keys act where they should
after --cfg-options."""
import pytest
from mmengine.config import Config

from hvlm.registry import MODELS
from hvlm.utils.config import check_config
from hvlm.utils.recognition_options import apply_recognition_options
from .conftest import REPO

CONFIGS = sorted((REPO / 'configs' / 'recognition').glob('*.py'))


def load(path, **options):
    cfg = Config.fromfile(str(path))
    cfg.merge_from_dict(options)
    return apply_recognition_options(cfg)


def test_there_are_configs_for_each_method():
    names = {p.name for p in CONFIGS}
    for name in ('video_coop_ucf101_16shot.py', 'dual_coop_ucf101_16shot.py',
                 'vidop_ucf101_16shot.py', 'zero_shot_ucf101.py',
                 'linear_probe_ucf101_16shot.py',
                 'video_coop_hvlm-demo_8shot.py',
                 'video_coop_ucf101_2shot.py'):
        assert name in names


def test_configs_pass_the_config_checks():
    # check_config resolves every type and checks every argument against
    # the classes' signatures (the models are built in the model tests)
    for path in CONFIGS:
        cfg = load(path)
        check_config(cfg)
        assert cfg.model.temporal_pooling == cfg.temporal_pooling


def test_vilt_config_builds(tiny_clip_dir):
    cfg = load(CONFIGS[0].parent / 'vilt_ucf101_16shot.py')
    learner = dict(cfg.model.prompt_learner, prompt_depth=2)  # tiny: 2
    model = MODELS.build(dict(cfg.model, pretrained=tiny_clip_dir,
                              prompt_learner=learner))
    assert model.prompt_learner.switch_layer == 1


def test_option_keys_act_after_overrides():
    cfg = load(CONFIGS[0].parent / 'dual_coop_ucf101_16shot.py', K_train=4,
               K_val=None, few_shot_seed=2, batches_per_backprop=3,
               videomix_type='temporal', use_augmentation=True,
               num_temporal_views=3, ctx_len=5, early_stopping=2,
               continue_from='/ckpt/k400.pth', batch_size=1, num_workers=0)
    train, val = cfg.train_dataloader, cfg.val_dataloader
    assert (train.dataset.k_shot, train.dataset.k_shot_seed) == (4, 2)
    assert val.dataset.k_shot is None
    assert cfg.test_dataloader.dataset.get('k_shot') is None
    assert cfg.optim_wrapper.accumulative_counts == 3
    assert cfg.model.data_preprocessor.batch_augments == dict(
        type='VideoMix', mix_type='temporal')
    assert any(s['type'] == 'Flip' for s in train.dataset.pipeline)
    for loader in (train, val, cfg.test_dataloader):
        frames = [s for s in loader.dataset.pipeline
                  if s['type'] == 'SampleFrames']
        assert frames[0]['num_clips'] == 3
        assert (loader.batch_size, loader.num_workers) == (1, 0)
    assert cfg.model.prompt_learner.ctx_len == 5
    stop = [h for h in cfg.custom_hooks if h['type'] == 'EarlyStoppingHook']
    assert stop == [dict(type='EarlyStoppingHook', monitor='recog/top1',
                         rule='greater', patience=2)]
    assert cfg.load_from == '/ckpt/k400.pth'
    off = load(CONFIGS[0].parent / 'dual_coop_ucf101_16shot.py',
               videomix_type=None, early_stopping=None)
    assert off.model.data_preprocessor.batch_augments is None
    assert not any(h['type'] == 'EarlyStoppingHook'
                   for h in off.custom_hooks)
    assert not any(s['type'] == 'Flip'
                   for s in off.train_dataloader.dataset.pipeline)


def test_zero_shot_tests_without_a_checkpoint():
    from hvlm.utils.cli import merge_test_args, parse_test_args
    path = str(CONFIGS[0].parent / 'zero_shot_ucf101.py')
    cfg = merge_test_args(Config.fromfile(path),
                          parse_test_args([path, 'none']))
    assert cfg.load_from is None and cfg.model.get('prompt_learner') is None
    cfg = merge_test_args(Config.fromfile(path),
                          parse_test_args([path, 'w/epoch_1.pth']))
    assert cfg.load_from == 'w/epoch_1.pth'


def test_unknown_method_names_the_key():
    from hvlm.utils.config import ConfigError
    cfg = load(CONFIGS[0].parent / 'video_coop_ucf101_16shot.py')
    cfg.merge_from_dict({'model.prompt_learner.type': 'VideoCoop'})
    with pytest.raises(ConfigError, match=r"model.prompt_learner.type = "
                       r"'VideoCoop' .* did you mean VideoCoOp"):
        check_config(cfg)


def test_base_to_novel_config():
    cfg = load(CONFIGS[0].parent / 'video_coop_ucf101_base2novel.py')
    assert cfg.train_dataloader.dataset.class_subset == 'base'
    assert cfg.val_dataloader.dataset.class_subset == 'base'
    assert cfg.test_dataloader.dataset.get('class_subset') is None
    assert cfg.test_evaluator.base_novel is True


def test_demo_config_data_reach_the_model(tiny_demo_root, tiny_clip_dir):
    """The demo config's datasets and pipelines on the tiny demo set, one
    training step of its model on a tiny CLIP."""
    from hvlm.datasets import video_collate
    from hvlm.registry import DATASETS
    cfg = load(CONFIGS[0].parent / 'video_coop_hvlm-demo_8shot.py',
               K_train=1, use_augmentation=True)
    train = dict(cfg.train_dataloader.dataset,
                 data_root=f'{tiny_demo_root}/training')
    val = dict(cfg.val_dataloader.dataset,
               data_root=f'{tiny_demo_root}/validation',
               vocab_root=f'{tiny_demo_root}/training')
    train_set, val_set = DATASETS.build(train), DATASETS.build(val)
    assert train_set.metainfo['classes'] == val_set.metainfo['classes']
    per_class = {}
    for i in range(len(train_set)):
        label = train_set.get_data_info(i)['label']
        per_class[label] = per_class.get(label, 0) + 1
    assert set(per_class.values()) == {1}  # K_train=1
    assert any(s['type'] == 'ColorJitter' for s in train['pipeline'])
    model = MODELS.build(dict(cfg.model, pretrained=tiny_clip_dir,
                              class_texts=train_set.metainfo['class_texts']))
    batch = video_collate([train_set[0], train_set[1]])
    data = model.data_preprocessor(batch, training=True)
    assert data['inputs'].shape[1:4] == (1, 3, 8)  # views, RGB, frames
    loss = model(**data, mode='loss')['loss_cls']
    assert loss.requires_grad and loss.item() > 0


def test_continue_from_loads_or_resumes(tmp_path):
    """The original's --continue-from both starts a transfer run from a
    checkpoint's weights and resumes a run: continue_from alone loads,
    with --resume the run resumes from that checkpoint (not the work dir's
    latest)."""
    from hvlm.utils.cli import merge_train_args, parse_train_args
    path = str(CONFIGS[0].parent / 'video_coop_ucf101_16shot.py')
    common = ['--work-dir', str(tmp_path), '--cfg-options',
              'continue_from=/ckpt/run/epoch_3.pth']
    load_only = merge_train_args(Config.fromfile(path),
                                 parse_train_args([path, *common]))
    assert load_only.load_from == '/ckpt/run/epoch_3.pth'
    assert not load_only.get('resume')
    resumed = merge_train_args(Config.fromfile(path),
                               parse_train_args([path, '--resume', *common]))
    assert resumed.resume and resumed.load_from == '/ckpt/run/epoch_3.pth'
    latest = merge_train_args(Config.fromfile(path),
                              parse_train_args([path, '--resume',
                                                '--work-dir', str(tmp_path)]))
    assert latest.resume and latest.load_from is None
