# ViTA on hvlm's demo data: per-layer video tokens, frame tokens and a
# summary token from attention across the frames; every other option as
# in video_coop_hvlm-demo_8shot.py.
_base_ = ['./video_coop_hvlm-demo_8shot.py']
model = dict(
    prompt_learner=dict(_delete_=True, type='ViTA', ctx_len=16,
                        num_video_tokens=8, num_heads=4))
ctx_len = 16
