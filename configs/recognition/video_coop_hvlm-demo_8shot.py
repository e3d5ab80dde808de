# Video-CoOp on hvlm's demo data (dominant action per video, 8 classes):
# trains on a fresh clone given a CLIP directory, e.g. the one exported by
# the video-text pretraining on the demo data:
#   python tools/train.py configs/recognition/video_coop_hvlm-demo_8shot.py \
#     --cfg-options model.pretrained=work_dirs/<run>/clip
_base_ = [
    '_base_/models/clip_recognizer.py',
    '_base_/datasets/hvlm_demo_actions.py',
    '_base_/schedules/prompt_tuning.py', '_base_/default_runtime.py',
    '_base_/recognition_options.py'
]
model = dict(prompt_learner=dict(type='VideoCoOp', ctx_len=8))
batch_size = 4
num_workers = 2
batches_per_backprop = 1
ctx_len = 8
K_train = 8
K_val = 4  # 32 validation videos pick the best epoch
max_epochs = 8
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-6,
         by_epoch=True, begin=1, end=max_epochs, convert_to_iter_based=True),
]
