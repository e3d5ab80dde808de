# STT on hvlm's demo data: ViTA plus per-layer summary tokens appended to
# every class prompt; every other option as in
# video_coop_hvlm-demo_8shot.py.
_base_ = ['./video_coop_hvlm-demo_8shot.py']
model = dict(
    prompt_learner=dict(_delete_=True, type='STT', ctx_len=8,
                        num_video_tokens=8, num_heads=4))
ctx_len = 8
