# ViDOP: visual prompts only; text features of "a video of a person doing
# {class}." fixed (use_handcrafted_features).
_base_ = ['./video_coop_ucf101_16shot.py']
model = dict(
    prompt_learner=dict(_delete_=True, type='ViDOP', ctx_len_video=8,
                        deep_visual=True, use_handcrafted_features=True))
ctx_len = None
use_handcrafted_features = True
use_augmentation = True
