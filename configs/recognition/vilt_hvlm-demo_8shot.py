# ViLT on hvlm's demo data: coupled deep prompts in both towers; every
# other option as in video_coop_hvlm-demo_8shot.py. The demo CLIP has 4
# vision and 3 text layers, so the prompts reach all of them.
_base_ = ['./video_coop_hvlm-demo_8shot.py']
model = dict(
    prompt_learner=dict(_delete_=True, type='ViLT', ctx_len=2,
                        prompt_depth=3, reg_weight=1.0))
ctx_len = 2
