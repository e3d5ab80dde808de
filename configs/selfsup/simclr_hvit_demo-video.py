# SimCLR on video frames: HViT pretrained on the frames of hvlm's demo
# videos (generated on first use, as for configs/hier_sports.py), no labels
# read. The positive pair is two frames of one video, one from each half
# (SampleFrames with two one-frame clips, PackFrames), each then augmented
# by SimCLRViews on its own:
#   python tools/train.py configs/selfsup/simclr_hvit_demo-video.py
# Your videos, in hvlm's layout (<split>/videos, <split>/annotations):
#   --cfg-options train_dataloader.dataset.data_root=DIR/training
# The checkpoint's backbone is what configs/classification/hvit_demo.py
# loads with model.ssl_checkpoint=..., and what HViTFrameEncoder loads as a
# per-frame stem of the video models.
_base_ = ['./simclr_hvit_demo.py']

video_demo_root = 'data/hvlm_demo'
video_demo = dict(
    root=video_demo_root,
    seed=0,
    videos_per_domain=dict(training=320, validation=50, test=50))
frame_pipeline = [
    dict(type='DecordInit'),
    dict(type='SampleFrames', clip_len=1, num_clips=2),
    dict(type='DecordDecode'),
    dict(type='Resize', scale=({{_base_.img_size}}, {{_base_.img_size}}),
         keep_ratio=False),
    dict(type='PackFrames'),
]
train_dataloader = dict(
    batch_size=64,
    dataset=dict(
        _delete_=True,
        type='VideoDataset',
        # every domain's training videos; tasks=() reads no label
        data_root=video_demo_root + '/training',
        tasks=(),
        demo=video_demo,
        pipeline=frame_pipeline))
# The probe's validation needs labelled images: the demo videos' labels are
# per-frame actions, not one class per frame, so this config validates
# nothing; probe the checkpoint on labelled images with
# configs/selfsup/simclr_hvit_demo.py's val_dataloader if you have them.
val_dataloader = None
val_cfg = None
val_evaluator = None
train_cfg = dict(val_interval=1000)
