# STTran PredCLS on the demo data: Action Genome's exact format, generated
# on first use under data/scene_graph_demo (about 10 s), so that
#   python tools/train.py configs/scene_graph/sttran_predcls_demo.py
# trains on a fresh clone in a few minutes on a CPU.
_base_ = ['./sttran_predcls_ag.py']

demo_root = 'data/scene_graph_demo'
demo = dict(root=demo_root, seed=0, videos=(80, 24))
frame_scale = (72, 96)
pipeline = [
    dict(type='LoadSceneGraphFrames', scale=frame_scale),
    dict(type='PackSceneGraphInputs'),
]
train_dataloader = dict(
    batch_size=4,
    dataset=dict(data_root=demo_root, demo=demo, on_bad='error',
                 pipeline=pipeline))
val_dataloader = dict(
    batch_size=4,
    dataset=dict(data_root=demo_root, demo=demo, on_bad='error',
                 pipeline=pipeline))
test_dataloader = val_dataloader

model = dict(
    backbone=dict(type='SmallConvNet', channels=(16, 32, 64)),
    hidden_dim=128,
    num_heads=4,
    spatial_layer=1,
    temporal_layer=2)
optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=1e-4))
max_epochs = 10
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=20),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True,
         eta_min=1e-5),
]
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
default_hooks = dict(logger=dict(interval=10))
custom_hooks = [
    dict(type='EarlyStoppingHook', monitor='sg/with_R@20', rule='greater',
         patience=2)
]
