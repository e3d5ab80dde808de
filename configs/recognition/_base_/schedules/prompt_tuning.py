# Prompt tuning: AdamW on the learner's parameters (CLIP is frozen),
# warm-up then cosine, validation on recog/top1 each epoch.
max_epochs = 20
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-6,
         by_epoch=True, begin=1, end=max_epochs, convert_to_iter_based=True),
]
val_evaluator = dict(type='RecognitionMetric', topk=(1, 5))
test_evaluator = val_evaluator
custom_hooks = [
    # the class set of each loop's dataset goes to the model
    dict(type='RecognitionClassesHook'),
    dict(type='SkippedVideoHook'),
]
