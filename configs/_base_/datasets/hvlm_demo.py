# The demo data set: real .mp4 files generated on first use (about 30 s on
# two cores) under data/hvlm_demo, then reused. Point data_root elsewhere to
# train on your own videos in the same layout; `demo` is then ignored.
dataset_type = 'VideoDataset'
demo_root = 'data/hvlm_demo'
demo = dict(
    root=demo_root,
    seed=0,
    videos_per_domain=dict(training=320, validation=50, test=50))

# Four clips of 4 frames, 3 apart (1 s each), spread over the whole
# 6-10 s video, so that every action is in view: the QA questions ask what
# happens first, at the end and how many actions there are, which one clip
# from the middle cannot show (issue #5). 16 frames per video instead of
# 8: a training step costs about 1.8x. No Flip: the demo actions
# roll_left / roll_right depend on direction.
sample_frames = dict(
    type='SampleFrames', clip_len=4, frame_interval=3, num_clips=4)
train_pipeline = [
    dict(type='DecordInit'),
    sample_frames,
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 64)),
    dict(type='RandomResizedCrop', area_range=(0.6, 1.0)),
    dict(type='Resize', scale=(64, 64), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackVideoInputs'),
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(sample_frames, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, 64)),
    dict(type='CenterCrop', crop_size=64),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackVideoInputs'),
]
test_pipeline = val_pipeline

train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    # SeededSampler: augmentation follows (seed, epoch, index), so a resumed
    # run repeats the uninterrupted one exactly, whatever num_workers is
    sampler=dict(type='SeededSampler', shuffle=True),
    collate_fn=dict(type='video_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=demo_root + '/training',
        demo=demo,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='video_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=demo_root + '/validation',
        demo=demo,
        pipeline=val_pipeline,
        test_mode=True))
# the validation loader on the test split
test_dataloader = dict(
    val_dataloader,
    dataset=dict(
        val_dataloader['dataset'],
        data_root=demo_root + '/test',
        pipeline=test_pipeline))
