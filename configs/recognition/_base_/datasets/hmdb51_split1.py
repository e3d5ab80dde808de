# HMDB-51 split 1 as distributed:
#   data/hmdb51/videos/<class>/<video>.avi
#   data/hmdb51/testTrainMulti_7030_splits/<class>_test_split1.txt
# (1 = training, 2 = test, 0 = unused). Validation: K_val per class of the
# test videos; test: all of them.
_base_ = ['./clip_pipelines.py']
hmdb = dict(type='HMDB51Dataset', data_root='data/hmdb51/videos',
            ann_file='data/hmdb51/testTrainMulti_7030_splits', split=1)
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='SeededSampler', shuffle=True),
    collate_fn=dict(type='video_collate'),
    dataset=dict(hmdb, subset='train', pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='video_collate'),
    dataset=dict(hmdb, subset='test', pipeline={{_base_.test_pipeline}},
                 test_mode=True))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], k_shot=None))
