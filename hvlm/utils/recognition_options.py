"""The prompt-tuning options of the original scripts as top-level config
keys, written into the nested config after ``--cfg-options`` is merged.

A Python config is evaluated once, so a derived value (``k_shot=K_train``)
would keep the file's K after ``--cfg-options K_train=4``. The recognition
configs instead declare these keys at the top level, and
:func:`apply_recognition_options` (called by tools/train.py and
tools/test.py after the overrides are merged) writes each one where it
acts. A key a config does not declare is left alone.

==========================  ==================================================
key                         what it sets
==========================  ==================================================
``batch_size``              ``batch_size`` of the three dataloaders
``num_workers``             ``num_workers`` of the three dataloaders
``batches_per_backprop``    ``optim_wrapper.accumulative_counts``: gradients
                            of N batches are summed (each loss / N), then one
                            optimizer step with gradient clipping (on
                            unscaled gradients under AMP)
``K_train`` / ``K_val``     ``k_shot`` of the training / validation dataset
                            (``None``: every video)
``few_shot_seed``           ``k_shot_seed`` of those datasets
``temporal_pooling``        ``model.temporal_pooling``
``num_temporal_views``      ``num_clips`` of every ``SampleFrames``
``ctx_len``                 ``model.prompt_learner.ctx_len``
``videomix_type``           ``model.data_preprocessor.batch_augments``:
                            ``VideoMix(mix_type)``, or none for ``None``
``use_augmentation``        the training pipeline: ``augmented_train_pipeline``
                            or ``train_pipeline``
``use_handcrafted_features`` ``model.prompt_learner.use_handcrafted_features``
``continue_from``           ``load_from``: start from these weights (another
                            run's checkpoint); resuming is ``--resume``
``early_stopping``          patience (validations without a better
                            ``recog/top1``) of an ``EarlyStoppingHook``;
                            ``None``: none
==========================  ==================================================
"""
import copy

from mmengine.config import Config

from .config import ConfigError

OPTIONS = ('batch_size', 'num_workers', 'batches_per_backprop', 'K_train',
           'K_val', 'few_shot_seed', 'temporal_pooling',
           'num_temporal_views', 'ctx_len', 'videomix_type',
           'use_augmentation', 'use_handcrafted_features', 'continue_from',
           'early_stopping')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _loaders(cfg: Config):
    for name in LOADERS:
        loader = cfg.get(name)
        if loader is not None:
            yield name, loader


def _pipelines(cfg: Config):
    for _, loader in _loaders(cfg):
        pipeline = loader.get('dataset', {}).get('pipeline')
        if pipeline:
            yield pipeline


def apply_recognition_options(cfg: Config) -> Config:
    """Write the declared :data:`OPTIONS` into ``cfg`` (in place)."""
    has = [k for k in OPTIONS if k in cfg]
    if not has:
        return cfg
    if 'batch_size' in cfg:
        for _, loader in _loaders(cfg):
            loader.batch_size = cfg.batch_size
    if 'num_workers' in cfg:
        for _, loader in _loaders(cfg):
            loader.num_workers = cfg.num_workers
            if cfg.num_workers == 0:
                loader.persistent_workers = False
    if 'batches_per_backprop' in cfg:
        n = cfg.batches_per_backprop
        if not isinstance(n, int) or n < 1:
            raise ConfigError(f'batches_per_backprop={n!r} must be a '
                              'positive integer')
        cfg.optim_wrapper.accumulative_counts = n
    for key, loader in (('K_train', 'train_dataloader'),
                        ('K_val', 'val_dataloader')):
        if key in cfg and cfg.get(loader) is not None:
            cfg[loader].dataset.k_shot = cfg[key]
            if 'few_shot_seed' in cfg:
                cfg[loader].dataset.k_shot_seed = cfg.few_shot_seed
    model = cfg.get('model', {})
    if 'temporal_pooling' in cfg:
        model.temporal_pooling = cfg.temporal_pooling
    if 'use_augmentation' in cfg and cfg.get('train_dataloader'):
        name = 'augmented_train_pipeline' if cfg.use_augmentation else \
            'train_pipeline'
        if name not in cfg:
            raise ConfigError(f'use_augmentation={cfg.use_augmentation} '
                              f'needs {name} in the config')
        cfg.train_dataloader.dataset.pipeline = copy.deepcopy(cfg[name])
    # after the pipeline choice, which would undo it
    if 'num_temporal_views' in cfg:
        for pipeline in _pipelines(cfg):
            for step in pipeline:
                if step.get('type') == 'SampleFrames':
                    step['num_clips'] = cfg.num_temporal_views
    learner = model.get('prompt_learner')
    for key in ('ctx_len', 'use_handcrafted_features'):
        if key in cfg and cfg[key] is not None:
            if not learner:
                raise ConfigError(f'{key}={cfg[key]!r} but the model has no '
                                  'prompt_learner')
            learner[key] = cfg[key]
    if 'videomix_type' in cfg:
        pre = model.setdefault('data_preprocessor',
                               dict(type='RecognitionDataPreprocessor'))
        pre['batch_augments'] = None if cfg.videomix_type is None else dict(
            type='VideoMix', mix_type=cfg.videomix_type)
    if cfg.get('continue_from'):
        cfg.load_from = cfg.continue_from
    if 'early_stopping' in cfg:
        hooks = [h for h in cfg.get('custom_hooks', [])
                 if h.get('type') != 'EarlyStoppingHook']
        if cfg.early_stopping:
            hooks.append(dict(type='EarlyStoppingHook',
                              monitor='recog/top1', rule='greater',
                              patience=int(cfg.early_stopping)))
        cfg.custom_hooks = hooks
    return cfg
