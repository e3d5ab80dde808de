# Kinetics-400 from the release's CSV files:
#   data/kinetics400/annotations/{train,validate}.csv
#   data/kinetics400/{train,val}/<youtube_id>_<start:06d>_<end:06d>.mp4
# (per-class folders: video_pattern='{label}/{youtube_id}_...'). Classes
# are the sorted labels of the training CSV, for every split.
_base_ = ['./clip_pipelines.py']
train_csv = 'data/kinetics400/annotations/train.csv'
kinetics = dict(type='KineticsDataset', class_index=train_csv)
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='SeededSampler', shuffle=True),
    collate_fn=dict(type='video_collate'),
    dataset=dict(kinetics, data_root='data/kinetics400/train',
                 ann_file=train_csv, pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='video_collate'),
    dataset=dict(kinetics, data_root='data/kinetics400/val',
                 ann_file='data/kinetics400/annotations/validate.csv',
                 pipeline={{_base_.test_pipeline}}, test_mode=True))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], k_shot=None))
