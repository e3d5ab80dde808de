# Video-text contrastive pretraining (CLIP / ActionCLIP style) of a small
# CLIP from scratch on every domain of the demo data: each annotated segment
# is a clip of 4 frames paired with its caption or its action label as text
# ("a video of roll right."). At the end the model is written as a Hugging
# Face CLIP directory, <work_dir>/hf_export, which HFVisionEncoder /
# HFTextEncoder load like a downloaded CLIP:
#   python tools/train.py configs/pretrained/vtc_general.py
# Continue a real CLIP instead (its mean/std/size are read from it; set the
# pipelines' size to its image size, e.g. 224):
#   --cfg-options model.scratch=None model.pretrained=/data/clip-vit-b16
# Validation: zero-shot classification of the segments' actions from the
# class texts and text<->video retrieval on the captions, with chance levels
# (VideoTextRetrievalMetric). See docs/PRETRAINED.md.
_base_ = ['../_base_/default_runtime.py']

demo_root = 'data/hvlm_demo'
demo = dict(
    root=demo_root,
    seed=0,
    videos_per_domain=dict(training=320, validation=50, test=50))
# 48x48 frames in 8x8 patches (a 6x6 grid): the demo's shapes and colours
# stay visible and a CPU epoch takes minutes
image_size = 48
# CLIP's statistics on the 0-255 scale (exported as preprocessor_config)
mean = [122.7709, 116.7460, 104.0937]
std = [68.5005, 66.6322, 70.3232]

model = dict(
    type='VideoTextContrastive',
    pretrained=None,
    scratch=dict(
        vision=dict(
            hidden_size=128,
            intermediate_size=512,
            num_hidden_layers=4,
            num_attention_heads=4,
            image_size=image_size,
            patch_size=8),
        text=dict(
            hidden_size=128,
            intermediate_size=512,
            num_hidden_layers=3,
            num_attention_heads=4,
            max_position_embeddings=96),
        projection_dim=128),
    data_preprocessor=dict(
        type='VideoDataPreprocessor', mean=mean, std=std))

meta_keys = ('video_id', 'filename', 'domain', 'frame_inds', 'segment',
             'label_id', 'text', 'caption', 'class_texts')
train_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleSegmentFrames', clip_len=4, frame_interval=3),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, image_size)),
    dict(type='RandomResizedCrop', area_range=(0.6, 1.0)),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=False),
    dict(type='SampleText', caption_prob=0.5),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackVideoInputs', meta_keys=meta_keys),
]
val_pipeline = [
    dict(type='DecordInit'),
    dict(
        type='SampleSegmentFrames', clip_len=4, frame_interval=3,
        test_mode=True),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=(-1, image_size)),
    dict(type='CenterCrop', crop_size=image_size),
    dict(type='SampleText', test_mode=True),
    dict(type='FormatShape', input_format='NCTHW'),
    dict(type='PackVideoInputs', meta_keys=meta_keys),
]
dataset = dict(
    type='VideoTextDataset',
    label_template='a video of {}.',
    vocab_root='training',
    demo=demo)
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='SeededSampler', shuffle=True),
    collate_fn=dict(type='video_collate'),
    dataset=dict(
        dataset, data_root=demo_root + '/training',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='video_collate'),
    dataset=dict(
        dataset,
        data_root=demo_root + '/validation',
        pipeline=val_pipeline,
        test_mode=True))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], data_root=demo_root + '/test'))
val_evaluator = dict(type='VideoTextRetrievalMetric')
test_evaluator = val_evaluator

max_epochs = 6
train_cfg = dict(
    type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=5e-4, betas=(0.9, 0.98), weight_decay=0.1),
    # no decay on norms, biases, embeddings and the temperature
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'logit_scale': dict(decay_mult=0.0),
            'embedding': dict(decay_mult=0.0)
        }),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 1, eta_min=1e-5,
         by_epoch=True, begin=1, end=max_epochs, convert_to_iter_based=True),
]
default_hooks = dict(
    checkpoint=dict(save_best='vtc/top1', rule='greater'),
    logger=dict(interval=10))
custom_hooks = [dict(type='ExportPretrainedHook')]
