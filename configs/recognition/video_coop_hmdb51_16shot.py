# Video-CoOp on HMDB-51 split 1, 16 videos per class.
_base_ = [
    '_base_/models/clip_recognizer.py', '_base_/datasets/hmdb51_split1.py',
    '_base_/schedules/prompt_tuning.py', '_base_/default_runtime.py',
    '_base_/recognition_options.py'
]
model = dict(prompt_learner=dict(type='VideoCoOp', ctx_len=16))
ctx_len = 16
K_train = 16
