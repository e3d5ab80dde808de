# SimCLR pretraining of HViT on the demo images, labels unused:
#   python tools/train.py configs/selfsup/simclr_hvit_demo.py
# Your images: --cfg-options train_dataloader.dataset.data_root=DIR
# (class folders or a flat folder: labelled=False reads every image).
_base_ = ['../_base_/default_runtime.py', '../_base_/datasets/demo_images.py']

# The seed's HViT is embed_dim_rgb=96, depths [2, 2, 6, 2], heads
# [3, 6, 12, 24], patch 16 at 256 px (27.6 M parameters); the demo shrinks
# widths and depths (1.4 M parameters, patch 4 at 32 px: 64, 16, 4 and 1
# tokens in the four stages) so that a CPU run takes minutes. Override them
# back with --cfg-options model.backbone.embed_dim_rgb=96 ... for real data.
backbone = dict(
    type='HViT',
    img_size={{_base_.img_size}},
    patch_size=4,
    embed_dim_rgb=32,
    depths=[1, 1, 2, 1],
    num_heads=[1, 2, 4, 8],
    drop_path_rate=0.0,
    attention=dict(type='FullAttention'),
    with_cp=False)

# NT-Xent temperature: the seed says 0.07 at batch 64; mmpretrain's SimCLR
# uses 0.1 and lightly 0.5. On the demo images (batch 128) 0.1 and 0.2 gave
# the same probe accuracy and 0.5 a lower one (docs/SELF_SUPERVISED.md).
temperature = 0.2
model = dict(
    type='SimCLR',
    backbone=backbone,
    projection_dim=128,
    temperature=temperature,
    data_preprocessor=dict(
        type='ImageDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        batch_augments=[
            dict(type='SimCLRViews', crop_size={{_base_.img_size}},
                 scale=(0.2, 1.0), jitter=(0.8, 0.8, 0.8, 0.2),
                 jitter_prob=0.8, grayscale_prob=0.2, blur_prob=0.5)
        ]))

train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='SeededSampler', shuffle=True),
    collate_fn=dict(type='video_collate'),
    dataset=dict(
        type={{_base_.dataset_type}},
        data_root={{_base_.train_root}},
        labelled=False,
        demo={{_base_.demo}},
        pipeline={{_base_.pipeline}}))
# Validation: a linear probe and kNN on the frozen features of the labelled
# validation split (probe/probe_accuracy); its classes are the training
# split's folders, as for fine-tuning.
val_dataloader = dict(
    batch_size=64,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='video_collate'),
    dataset=dict(
        type={{_base_.dataset_type}},
        data_root={{_base_.val_root}},
        demo={{_base_.demo}},
        pipeline={{_base_.pipeline}},
        test_mode=True))
val_cfg = dict(type='ValLoop')
val_evaluator = dict(type='ProbeAccuracy', k=20, folds=2)
test_dataloader = None
test_cfg = None
test_evaluator = None

# 50 epochs of 23 steps (3000 images, batch 128): about 6 minutes on one
# busy CPU core (docs/SELF_SUPERVISED.md)
max_epochs = 50
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=10)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
    clip_grad=dict(max_norm=1.0))
# linear warm-up for 10% of training, then cosine
warmup_epochs = 5
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         eta_min=1e-5, by_epoch=True, begin=warmup_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
default_hooks = dict(
    logger=dict(interval=5),
    checkpoint=dict(interval=10, max_keep_ckpts=2, save_best=None,
                    save_last=True))
auto_scale_lr = dict(enable=False, base_batch_size=128)
