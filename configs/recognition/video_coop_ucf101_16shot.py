# Video-CoOp on UCF-101 split 1, 16 videos per class (ViFi-CLIP / X-CLIP
# few-shot protocol; docs/RECOGNITION.md). A local CLIP is required:
#   python tools/train.py configs/recognition/video_coop_ucf101_16shot.py \
#     --cfg-options model.pretrained=/data/clip-vit-base-patch16
_base_ = [
    '_base_/models/clip_recognizer.py', '_base_/datasets/ucf101_split1.py',
    '_base_/schedules/prompt_tuning.py', '_base_/default_runtime.py',
    '_base_/recognition_options.py'
]
model = dict(
    prompt_learner=dict(type='VideoCoOp', ctx_len=16, ctx_init=None))
ctx_len = 16
K_train = 16
