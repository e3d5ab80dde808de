# ViLT (the original's name): coupled deep prompts in both towers (text
# prompts drive the early layers, vision prompts the later ones, each
# projected into the other tower), regularised toward "a video of a person
# doing {class}.".
_base_ = ['./video_coop_ucf101_16shot.py']
model = dict(
    prompt_learner=dict(_delete_=True, type='ViLT', ctx_len=2,
                        prompt_depth=9, reg_weight=1.0))
ctx_len = 2
