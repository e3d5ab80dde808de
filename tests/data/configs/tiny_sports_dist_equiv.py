# tiny_sports set up so that N processes x batch b and one process x batch
# N*b must end with the same weights (tests/test_tools/test_dist_equivalence
# .py). Give the per-process batch with train_dataloader.batch_size.
_base_ = ['./tiny_sports.py']

# Every domain: 12 training videos, a multiple of the global batches used
# (2 x 2 and 1 x 4), so no rank pads its share and no batch is short.
train_dataloader = dict(dataset=dict(domains=None))

# Nothing random in the forward pass: each process would draw other masks.
model = dict(
    backbone=dict(drop_path_rate=0.),
    head=dict(
        heads=dict(
            action_detection=dict(dropout=0.),
            video_qa=dict(dropout=0.),
            video_captioning=dict(dropout=0.))))

# Plain SGD without clipping or schedule: a gradient of the wrong scale (a
# loss summed instead of averaged, or averaged per rank) moves SGD's weights
# by as much, where AdamW's normalisation or clipping would hide most of it.
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='SGD', lr=0.05, momentum=0.9),
    paramwise_cfg=None,
    clip_grad=None)
param_scheduler = []

# Training only: no validation, so no best checkpoint either.
val_cfg = None
val_dataloader = None
val_evaluator = None
default_hooks = dict(checkpoint=dict(save_best=None, max_keep_ckpts=-1))
