# A small HierarchicalVLM: two stages (96 -> 192 channels) with a 2x2
# spatial merge between them; trains on a 2-core CPU.
model = dict(
    type='HierarchicalVLM',
    data_preprocessor=dict(
        type='VideoDataPreprocessor',
        # ImageNet statistics on the 0-255 scale (RGB).
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375]),
    backbone=dict(
        type='HierarchicalVideoEncoder',
        in_channels=3,
        patch_size=(2, 8, 8),
        embed_dims=(96, 192),
        depths=(2, 2),
        num_heads=(3, 6),
        mlp_ratio=4.0,
        drop_path_rate=0.1,
        attention=dict(type='FullAttention'),
        merger=dict(type='SpatialPoolMerger', kernel=(1, 2, 2))),
    head=dict(
        type='MultiTaskHead',
        heads=dict(
            action_detection=dict(
                type='ActionDetectionHead',
                in_channels=192,
                num_classes=150,
                dropout=0.1)),
        task_weights=dict(action_detection=1.0)))

val_evaluator = dict(type='FrameActionMetric')
test_evaluator = val_evaluator
