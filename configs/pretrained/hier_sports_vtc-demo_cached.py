# hier_sports_vtc-demo.py trained from cached patch tokens: the frozen
# demo CLIP runs once per video instead of at every step.
#   python tools/misc/extract_features.py \
#     configs/pretrained/hier_sports_vtc-demo.py --split train \
#     --out work_dirs/cache_vtc-demo/train
#   (the same with --split val and --split test, --out .../val, .../test)
#   python tools/train.py configs/pretrained/hier_sports_vtc-demo_cached.py
# Every split's frames are the test pipeline's fixed sampling (no random
# temporal sampling or crops, see docs/PRETRAINED.md).
_base_ = ['./hier_sports_vtc-demo.py']

model = dict(data_preprocessor=dict(cached_features=True))

cache = 'work_dirs/cache_vtc-demo'
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='LoadCachedFeatures', cache_dir=cache + '/train'),
        dict(type='PackVideoInputs'),
    ]))
val_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='LoadCachedFeatures', cache_dir=cache + '/val'),
        dict(type='PackVideoInputs'),
    ]))
test_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='LoadCachedFeatures', cache_dir=cache + '/test'),
        dict(type='PackVideoInputs'),
    ]))
