# Linear probe on the same frozen CLIP features (mean-pooled frames): the
# baseline every prompt learner is compared with.
_base_ = ['./video_coop_ucf101_16shot.py']
model = dict(prompt_learner=None, classifier='linear', num_classes=101)
ctx_len = None
temporal_pooling = 'mean'
