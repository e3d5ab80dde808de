# ViTA: per-layer video tokens, a frame token from each frame's class
# token, and a summary token from attention across the frames, plus
# VideoCoOp's text context.
_base_ = ['./video_coop_ucf101_16shot.py']
model = dict(
    prompt_learner=dict(_delete_=True, type='ViTA', ctx_len=16,
                        num_video_tokens=8, num_heads=8))
temporal_pooling = 'mean'
