# Domain fine-tuning: start from the general model, freeze it, and train
# only the sports LoRA factors (rank 8, alpha 16 on every attention and MLP
# linear of the encoder: 74 K parameters, 2.4% of the small model with
# its four domain adapters, as count_params.py reports).
#
# Needs the general checkpoint work_dirs/hier_general/epoch_30.pth (the last
# epoch of hier_general's 30), which this command writes:
#   python tools/train.py configs/hier_general.py
# Without that file the run stops at load_from. To start from another
# general model, e.g. configs/hier_general_8e.py's:
#   python tools/train.py configs/hier_sports_lora-ft.py \
#       --cfg-options load_from=work_dirs/hier_general_8e/epoch_8.pth
_base_ = ['./hier_sports.py']

load_from = 'work_dirs/hier_general/epoch_30.pth'
# The general model has no LoRA factors: only they may be missing from
# load_from (they start as initialised, B = 0, so the model starts as the
# general one). Any other missing key or a tensor of another shape stops
# the run (hvlm.utils.checkpoint_fit).
load_from_allow_missing = [r'\.lora_[AB]\.']

model = dict(
    adapter=dict(
        type='LoRAAdapter',
        # all four domains, so every domain's adapter fits the same model
        domains=('general', 'sports', 'tutorials', 'news'),
        target_modules=('attn', 'mlp'),
        rank=8,
        alpha=16,
        dropout=0.05,
        freeze_base=True,
        train_domains=['sports']))

# LoRA trains few parameters from a good start: a higher lr, fewer epochs.
max_epochs = 10
train_cfg = dict(max_epochs=max_epochs)
# no weight decay, so no per-parameter rules either (they would log a
# warning for every frozen parameter)
optim_wrapper = dict(
    optimizer=dict(lr=2e-3, weight_decay=0.), paramwise_cfg=None)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=1e-5,
         by_epoch=True, begin=0, end=max_epochs, convert_to_iter_based=True),
]
