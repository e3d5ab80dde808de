# hier_sports on the CLIP that configs/pretrained/vtc_general.py pretrains
# on the demo data (frozen): every frame's 6x6 patch tokens (48x48 frames,
# 8x8 patches, 128 wide) replace the tubelet embedding, two frames are
# averaged per token, a learned projection takes them to the stages' 96.
# First pretrain (it writes work_dirs/vtc_general/hf_export), then:
#   python tools/train.py configs/pretrained/hier_sports_vtc-demo.py
# or, encoding each video once instead of at every step,
# configs/pretrained/hier_sports_vtc-demo_cached.py. docs/PRETRAINED.md
# compares both with hier_sports trained from scratch.
_base_ = ['../hier_sports.py']

pretrained = 'work_dirs/vtc_general/hf_export'
model = dict(
    # mean/std are the checkpoint's (its preprocessor_config.json)
    data_preprocessor=dict(mean=None, std=None),
    backbone=dict(
        patch_size=2,
        stem=dict(type='HFVisionEncoder', pretrained=pretrained,
                  freeze=True)))

image_size = 48
sample_frames = dict(
    type='SampleFrames', clip_len=4, frame_interval=3, num_clips=4)
train_pipeline = [
    dict(type='DecordInit'),
    sample_frames,
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, image_size)),
    dict(type='RandomResizedCrop', area_range=(0.6, 1.0)),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackVideoInputs'),
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(sample_frames, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, image_size)),
    dict(type='CenterCrop', crop_size=image_size),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackVideoInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(dataset=dict(pipeline=val_pipeline))
