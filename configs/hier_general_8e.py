# The general model in 8 epochs instead of 30: 1,280 videos of four domains
# per epoch, so about as many iterations as hier_sports.py's 30 epochs of
# 320 sports videos. The LoRA comparison in docs/DOMAIN_MODULES.md starts
# from its last checkpoint, work_dirs/hier_general_8e/epoch_8.pth:
#   python tools/train.py configs/hier_general_8e.py
_base_ = ['./hier_general.py']

max_epochs = 8
train_cfg = dict(max_epochs=max_epochs)
# the base schedule (one warm-up epoch, cosine decay), ending at epoch 8
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-5,
         by_epoch=True, begin=1, end=max_epochs, convert_to_iter_based=True),
]
