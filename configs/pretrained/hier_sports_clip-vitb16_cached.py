# hier_sports_clip-vitb16.py trained from cached CLIP patch tokens: the ViT
# runs once per video, in tools/misc/extract_features.py, instead of at
# every step. Extract each split with the video config, then train here:
#   python tools/misc/extract_features.py \
#     configs/pretrained/hier_sports_clip-vitb16.py --split train \
#     --out /data/cache/train --cfg-options \
#     model.backbone.stem.pretrained=/data/clip-vit-base-patch16
#   (the same with --split val --out /data/cache/val)
#   python tools/train.py \
#     configs/pretrained/hier_sports_clip-vitb16_cached.py --cfg-options \
#     model.backbone.stem.pretrained=/data/clip-vit-base-patch16 \
#     train_dataloader.dataset.pipeline.0.cache_dir=/data/cache/train \
#     val_dataloader.dataset.pipeline.0.cache_dir=/data/cache/val \
#     test_dataloader.dataset.pipeline.0.cache_dir=/data/cache/val
# Every split's frames are the test pipeline's fixed sampling: random
# temporal sampling and crops are gone (see docs/PRETRAINED.md). The model
# still loads the ViT (its weights identify the cache and stay in the
# checkpoint, so the result also runs on videos).
_base_ = ['./hier_sports_clip-vitb16.py']

model = dict(data_preprocessor=dict(cached_features=True))

train_pipeline = [
    dict(type='LoadCachedFeatures', cache_dir=None),
    dict(type='PackVideoInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=train_pipeline))
test_dataloader = dict(dataset=dict(pipeline=train_pipeline))
