# tiny_sports with the adaptive merger driven by both merging strategies,
# one epoch per stage: curriculum 0.8 -> 0.6 -> 0.4 of the tokens kept, and
# cues off -> motion -> motion and saliency.
_base_ = ['./tiny_sports.py']

model = dict(
    backbone=dict(
        merger=dict(
            _delete_=True,
            type='AdaptiveTokenMerger',
            motion=dict(enabled=True, window_size=15),
            saliency=dict(enabled=True, edge=True, attention=True,
                          color=True),
            adaptive_merging=dict(
                target_compression_ratio=0.4,
                min_compression_ratio=0.25,
                max_compression_ratio=1.0))))

train_cfg = dict(max_epochs=3)
custom_hooks = [
    dict(
        type='CurriculumHook',
        stages=[
            dict(epochs=1, compression_ratio=0.8),
            dict(epochs=1, compression_ratio=0.6),
            dict(epochs=1, compression_ratio=0.4),
        ]),
    dict(
        type='ProgressiveMergingHook',
        stages=[
            dict(epochs=1, motion=False, saliency=False),
            dict(epochs=1, motion=True, saliency=False),
            dict(epochs=1, motion=True, saliency=True),
        ]),
]
