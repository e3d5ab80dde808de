# Curriculum learning (easy to hard): the adaptive merger keeps 80% of the
# tokens for the first 20% of the epochs, 60% for the next 30%, 40% for the
# last half - the original's stages of 20/30/50 epochs over 100, scaled to
# this schedule's 30. CurriculumHook sets the ratio at every epoch start
# and logs it as train/compression_ratio.
_base_ = ['../token_merging/hier_sports_adaptive.py']

model = dict(
    backbone=dict(
        merger=dict(
            # tools/test.py runs no curriculum: test at the last stage's
            # ratio, the one the model finished training with
            adaptive_merging=dict(target_compression_ratio=0.4))))

custom_hooks = [
    dict(
        type='CurriculumHook',
        stages=[
            dict(epochs=6, compression_ratio=0.8),
            dict(epochs=9, compression_ratio=0.6),
            dict(epochs=15, compression_ratio=0.4),
        ]),
]
