# hier_sports with every memory and speed switch on. Each is independent:
# drop or change its lines to turn it off.
_base_ = ['../hier_sports.py']

# Gradient checkpointing: every encoder block is recomputed in the backward
# pass (non-reentrant), so only block inputs are kept: less activation
# memory, for a second forward pass of every block. Same loss, same
# gradients.
model = dict(backbone=dict(with_cp=True))

optim_wrapper = dict(
    # Mixed precision (what --amp sets): bfloat16 autocast on CPU,
    # float16 with dynamic loss scaling on GPU.
    type='AmpOptimWrapper',
    # Gradient accumulation: step the optimizer every 4 batches (the loss
    # is divided by 4), the gradient of a 4x larger batch at the memory of
    # one.
    accumulative_counts=4,
    # Gradient clipping by total norm (on in every config; 1.0 as the
    # original).
    clip_grad=dict(max_norm=1.0))

# The warm-up (1 epoch, linear from 0.1 x lr) then cosine schedule comes
# from _base_/schedules/adamw_cosine_30e.py.

custom_hooks = [
    # EMA of the weights: validation and the saved 'state_dict' use the
    # average (the raw weights are kept as 'ema_state_dict' for resuming).
    # momentum 0.01: each iteration moves the average 1% of the way, so it
    # spans about 100 iterations (2.5 epochs of the demo's 320 sports
    # videos at 8 per batch). Parameters only: the model has no running
    # statistics, and the tokenizer in its state dict is not a weight.
    dict(type='EMAHook', momentum=0.01, update_buffers=False),
    # Stop when the validation metric has not improved by min_delta for
    # `patience` validations.
    dict(
        type='EarlyStoppingHook',
        monitor='action/frame_top1',
        rule='greater',
        min_delta=0.001,
        patience=5),
]
