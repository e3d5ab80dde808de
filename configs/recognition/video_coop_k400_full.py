# Video-CoOp on all of Kinetics-400 (the original's transfer source:
# continue_from=<this run's checkpoint> on UCF-101 or HMDB-51 afterwards).
_base_ = [
    '_base_/models/clip_recognizer.py', '_base_/datasets/kinetics400.py',
    '_base_/schedules/prompt_tuning.py', '_base_/default_runtime.py',
    '_base_/recognition_options.py'
]
model = dict(prompt_learner=dict(type='VideoCoOp', ctx_len=16))
ctx_len = 16
K_train = None
K_val = 4
batches_per_backprop = 32
max_epochs = 8
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-6,
         by_epoch=True, begin=1, end=max_epochs, convert_to_iter_based=True),
]
