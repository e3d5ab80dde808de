# STTran, PredCLS (ground-truth boxes and labels) on Action Genome.
# Reference defaults: 1 spatial encoder layer, 3 temporal decoder layers,
# AdamW lr 1e-5, gradient clipping 5. The seed's flags map to the keys
# below (docs/SCENE_GRAPH.md has the table).
_base_ = [
    '../_base_/datasets/action_genome.py', '../_base_/default_runtime.py'
]

model = dict(
    type='STTran',
    mode='predcls',
    num_classes=37,  # __background__, person and 35 objects
    backbone=dict(type='SmallConvNet', channels=(32, 64, 128)),
    hidden_dim=256,
    spatial_layer=1,
    temporal_layer=3,
    num_heads=8,
    temporal_window=2,
    attention_cfg=dict(type='FullAttention'),
    relation_head=dict(type='RelationHead'))

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-5, weight_decay=1e-5),
    clip_grad=dict(max_norm=5.0, norm_type=2))
warmup_steps = 1000
max_epochs = 10
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=warmup_steps),
    dict(type='MultiStepLR', milestones=[6, 8], gamma=0.1, by_epoch=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    checkpoint=dict(
        type='CheckpointHook',
        interval=1,
        max_keep_ckpts=3,
        save_best='sg/with_R@20',
        rule='greater'))
# early stopping on validation R@20 (with constraint)
custom_hooks = [
    dict(type='EarlyStoppingHook', monitor='sg/with_R@20', rule='greater',
         patience=3)
]
