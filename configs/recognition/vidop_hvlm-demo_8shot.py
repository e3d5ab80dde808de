# ViDOP on hvlm's demo data: visual prompts only, the template's text
# features fixed; every other option as in video_coop_hvlm-demo_8shot.py.
_base_ = ['./video_coop_hvlm-demo_8shot.py']
model = dict(
    prompt_learner=dict(_delete_=True, type='ViDOP', ctx_len_video=8,
                        deep_visual=True, use_handcrafted_features=True))
ctx_len = None
use_handcrafted_features = True
