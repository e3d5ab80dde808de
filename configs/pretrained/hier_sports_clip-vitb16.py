# hier_sports on a frozen CLIP ViT-B/16 at 224x224: every frame's 14x14
# patch tokens replace the tubelet embedding, two frames are averaged per
# token, a learned projection takes them from 768 to the stages' width.
# Nothing is downloaded; point the stem at a local copy of the checkpoint:
#   python tools/train.py configs/pretrained/hier_sports_clip-vitb16.py \
#     --cfg-options model.backbone.stem.pretrained=/data/clip-vit-base-patch16
# Any CLIP or SigLIP directory fits (the projection follows its width). See
# docs/PRETRAINED.md.
_base_ = ['../hier_sports.py']

model = dict(
    # The frames are normalised with the checkpoint's own mean/std, read
    # from its preprocessor_config.json when the model is built.
    data_preprocessor=dict(mean=None, std=None),
    backbone=dict(
        # t=2 frames per token; the spatial patch is the checkpoint's (16).
        patch_size=2,
        embed_dims=(384, 384),
        depths=(2, 2),
        num_heads=(6, 6),
        stem=dict(
            type='HFVisionEncoder',
            pretrained=None,
            freeze=True,
            # A step encodes 8 videos x 4 clips x 4 frames = 128 frames;
            # 64 per ViT pass bound the memory of the frozen ViT.
            frames_per_pass=64)),
    head=dict(
        heads=dict(
            action_detection=dict(in_channels=384),
            video_qa=dict(in_channels=384),
            video_captioning=dict(in_channels=384))))

# Decode straight at the ViT's 224x224 (the encoder would resize anything
# else to the size in the checkpoint's preprocessor_config.json).
sample_frames = dict(
    type='SampleFrames', clip_len=4, frame_interval=3, num_clips=4)
train_pipeline = [
    dict(type='DecordInit'),
    sample_frames,
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='RandomResizedCrop', area_range=(0.6, 1.0)),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackVideoInputs'),
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(sample_frames, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackVideoInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=val_pipeline))
