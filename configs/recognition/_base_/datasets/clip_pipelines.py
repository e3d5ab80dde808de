# Frames for a ViT-B/16 CLIP at 224 x 224: 8 frames spread over the whole
# video (a large frame_interval shrinks to fit each video).
clip_len = 8
sample_frames = dict(
    type='SampleFrames', clip_len=clip_len, frame_interval=1000,
    num_clips=1)
train_pipeline = [
    dict(type='DecordInit'),
    sample_frames,
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackRecognitionInputs'),
]
# use_augmentation=True: multi-scale crop, horizontal flip and colour
# jitter, drawn per video
augmented_train_pipeline = [
    dict(type='DecordInit'),
    sample_frames,
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 256)),
    dict(type='RandomResizedCrop', area_range=(0.4, 1.0)),
    dict(type='Resize', scale=(224, 224), keep_ratio=False),
    dict(type='Flip', flip_ratio=0.5),
    dict(type='ColorJitter', brightness=0.4, contrast=0.4, saturation=0.4),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackRecognitionInputs'),
]
test_pipeline = [
    dict(type='DecordInit'),
    dict(sample_frames, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 224)),
    dict(type='CenterCrop', crop_size=224),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackRecognitionInputs'),
]
