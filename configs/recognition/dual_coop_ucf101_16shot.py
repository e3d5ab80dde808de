# Dual-CoOp: learned text context plus visual prompt tokens in every layer.
_base_ = ['./video_coop_ucf101_16shot.py']
model = dict(
    prompt_learner=dict(type='DualCoOp', ctx_len=16, ctx_len_video=8,
                        deep_visual=True))
num_temporal_views = 1
videomix_type = None
