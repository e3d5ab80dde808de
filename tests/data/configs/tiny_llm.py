# configs/llm/llm_demo_stage2_lora.py with a tiny encoder, one clip per
# video and short generations, for the end-to-end test of tools/train.py.
_base_ = ['../../../configs/llm/llm_demo_stage2_lora.py']

model = dict(
    backbone=dict(embed_dims=(16, 32), depths=(1, 1), num_heads=(2, 2)),
    head=dict(
        heads=dict(
            action_detection=dict(in_channels=32),
            language=dict(
                in_channels=32, freeze_llm_epochs=1,
                generation=dict(max_new_tokens=4)))))

sample_frames = dict(
    type='SampleFrames', clip_len=4, frame_interval=3, num_clips=1)
train_pipeline = [
    dict(type='DecordInit'), sample_frames,
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackVideoInputs'),
]
val_pipeline = [
    dict(type='DecordInit'), dict(sample_frames, test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(32, 32), keep_ratio=False),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackVideoInputs'),
]
train_cfg = dict(max_epochs=2)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1))
_loader = dict(batch_size=3, num_workers=0, persistent_workers=False)
train_dataloader = dict(_loader, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(_loader, dataset=dict(pipeline=val_pipeline))
test_dataloader = dict(_loader, dataset=dict(pipeline=val_pipeline))
