# Zero-shot CLIP on UCF-101 split 1: no training, class features from the
# template ensemble. Run tools/test.py with any checkpoint of this config
# or, without one, tools/test.py ... none (see docs/RECOGNITION.md).
_base_ = ['./video_coop_ucf101_16shot.py']
model = dict(prompt_learner=None, temporal_pooling='mean')
temporal_pooling = 'mean'
ctx_len = None
