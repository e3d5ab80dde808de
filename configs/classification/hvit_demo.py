# Fine-tuning HViT on few labels of the demo images, from SimCLR weights:
#   python tools/train.py configs/classification/hvit_demo.py \
#       --cfg-options \
#       model.ssl_checkpoint=work_dirs/simclr_hvit_demo/epoch_50.pth
# Without ssl_checkpoint it trains from random initialisation (the
# baseline). Test with TTA: python tools/test.py CONFIG CKPT --tta
_base_ = ['../_base_/default_runtime.py', '../_base_/datasets/demo_images.py']

num_classes = 6
# Labels per class used for training (the rest of the split is unused).
shots_per_class = 10
severity = 'moderate'  # light | moderate | aggressive
mixup_alpha = 0.8
cutmix_alpha = 1.0
label_smoothing = 0.1
focal_gamma = 2.0
# per-class weights for imbalanced data (e.g. hvlm.models.losses.
# inverse_frequency_weights(counts)); None: all 1
class_weight = None

model = dict(
    type='ImageClassifier',
    ssl_checkpoint=None,
    # the SimCLR config's backbone; only stochastic depth differs
    backbone=dict(
        type='HViT',
        img_size={{_base_.img_size}},
        patch_size=4,
        embed_dim_rgb=32,
        depths=[1, 1, 2, 1],
        num_heads=[1, 2, 4, 8],
        drop_path_rate=0.1,
        attention=dict(type='FullAttention')),
    head=dict(
        type='ClsHead',
        num_classes=num_classes,
        loss=dict(
            type='FocalSmoothedCELoss',
            gamma=focal_gamma,
            label_smoothing=label_smoothing,
            class_weight=class_weight)),
    data_preprocessor=dict(
        type='ImageDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        batch_augments=[
            dict(type='SeverityAugment', severity=severity),
            # one of MixUp / CutMix per batch; targets mixed, not smoothed
            # (the loss smooths once); their num_classes is the head's
            dict(type='RandomBatchAugment',
                 augments=[
                     dict(type='MixUp', alpha=mixup_alpha),
                     dict(type='CutMix', alpha=cutmix_alpha)
                 ],
                 probs=[0.5, 0.5]),
        ]))

# tools/test.py --tta (or use_tta = True): probabilities averaged over the
# image, its centre crop and their mirrors
use_tta = False
tta_model = dict(type='ImageClassifierTTA', flip=True, crop_ratios=[0.875])

dataset = dict(
    type={{_base_.dataset_type}},
    demo={{_base_.demo}},
    pipeline={{_base_.pipeline}})
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='SeededSampler', shuffle=True),
    collate_fn=dict(type='video_collate'),
    dataset=dict(
        dataset,
        data_root={{_base_.train_root}},
        shots_per_class=shots_per_class,
        shot_seed=0))
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='video_collate'),
    dataset=dict(
        dataset,
        data_root={{_base_.val_root}},
        test_mode=True))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(
        dataset, data_root={{_base_.test_root}}, test_mode=True))
val_evaluator = dict(type='ClassificationMetric')
test_evaluator = val_evaluator

# 150 epochs of 4 steps (60 labelled images, batch 16): 600 steps
max_epochs = 150
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=25)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=1.0),
    # gradient accumulation: effective batch = batch_size x this
    accumulative_counts=1)
warmup_epochs = 5
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=1e-6, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]

# EMA of the weights; validation and saved 'state_dict' use the EMA weights,
# 'ema_state_dict' keeps the trained ones (mmengine's EMAHook). mmengine's
# momentum is 1 - decay. The seed's 0.9999 averages over ~10k steps: with
# few steps the EMA would stay near the initial weights, so the demo's 600
# steps use 0.99, and averaging starts after the warm-up (begin_iter).
ema_decay = 0.99
custom_hooks = [
    dict(type='EMAHook', momentum=1 - ema_decay, update_buffers=True,
         begin_iter=20, priority='ABOVE_NORMAL')
]
default_hooks = dict(
    logger=dict(interval=5),
    # the last checkpoint is the one tested (no selection on validation)
    checkpoint=dict(interval=25, max_keep_ckpts=1, save_best=None))
auto_scale_lr = dict(enable=False, base_batch_size=16)
