# Dual-CoOp on hvlm's demo data: the learner of
# dual_coop_ucf101_16shot.py, every other option as in
# video_coop_hvlm-demo_8shot.py (other K: --cfg-options K_train=4).
_base_ = ['./video_coop_hvlm-demo_8shot.py']
model = dict(
    prompt_learner=dict(_delete_=True, type='DualCoOp', ctx_len=16,
                        ctx_len_video=8, deep_visual=True))
ctx_len = 16
