# STT: ViTA plus each clip's per-layer summary tokens appended to every
# class prompt; the text is encoded per clip (K x clips texts per step).
# Videomix as in the original's script.
_base_ = ['./video_coop_ucf101_16shot.py']
model = dict(
    prompt_learner=dict(_delete_=True, type='STT', ctx_len=8,
                        num_video_tokens=8, num_heads=8))
ctx_len = 8
temporal_pooling = 'mean'
videomix_type = 'spatial'
