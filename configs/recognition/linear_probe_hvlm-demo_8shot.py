# Linear probe on the frozen demo CLIP's mean-pooled frame features: the
# baseline of every prompt learner on hvlm's demo data.
_base_ = ['./video_coop_hvlm-demo_8shot.py']
model = dict(prompt_learner=None, classifier='linear', num_classes=8)
ctx_len = None
temporal_pooling = 'mean'
