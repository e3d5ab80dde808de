# hvlm's demo data (generated on first use under data/hvlm_demo), each
# video labelled with its dominant action (ActionVideoDataset): trains on a
# fresh clone given a CLIP directory. 64 x 64 frames; the CLIP resizes.
_base_ = ['./clip_pipelines.py']
demo_root = 'data/hvlm_demo'
demo = dict(root=demo_root, seed=0,
            videos_per_domain=dict(training=320, validation=50, test=50))
dataset_type = 'ActionVideoDataset'
sample_frames = dict(type='SampleFrames', clip_len=8, frame_interval=1000,
                     num_clips=1)
train_pipeline = [
    dict(type='DecordInit'), sample_frames, dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 64)),
    dict(type='CenterCrop', crop_size=64),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackRecognitionInputs'),
]
# no flip: roll_left / roll_right depend on direction
augmented_train_pipeline = [
    dict(type='DecordInit'), sample_frames, dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 64)),
    dict(type='RandomResizedCrop', area_range=(0.6, 1.0)),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='ColorJitter', brightness=0.2, contrast=0.2, saturation=0.2),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackRecognitionInputs'),
]
test_pipeline = [
    dict(type='DecordInit'), dict(sample_frames, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 64)),
    dict(type='CenterCrop', crop_size=64),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackRecognitionInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='SeededSampler', shuffle=True),
    collate_fn=dict(type='video_collate'),
    dataset=dict(type=dataset_type, data_root=demo_root + '/training',
                 demo=demo, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='video_collate'),
    dataset=dict(type=dataset_type, data_root=demo_root + '/validation',
                 vocab_root='training', demo=demo, pipeline=test_pipeline,
                 test_mode=True))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], data_root=demo_root + '/test',
                 k_shot=None))
