# Progressive token merging: plain similarity merging (ToMe) first, then
# motion steers it, then motion and saliency - the original's three stages
# of 20/30/50 epochs over 100, scaled to this schedule's 30.
# ProgressiveMergingHook switches the cues at every epoch start and logs
# them as train/merging_motion and train/merging_saliency. The merger is
# built with both cues (a cue that was never built cannot be switched on);
# tools/test.py uses them both, as the last stage does.
_base_ = ['../token_merging/hier_sports_adaptive.py']

custom_hooks = [
    dict(
        type='ProgressiveMergingHook',
        stages=[
            dict(epochs=6, motion=False, saliency=False),
            dict(epochs=9, motion=True, saliency=False),
            dict(epochs=15, motion=True, saliency=True),
        ]),
]
