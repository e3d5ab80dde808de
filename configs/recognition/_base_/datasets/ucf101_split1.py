# UCF-101 split 1 as distributed (https://www.crcv.ucf.edu/data/UCF101.php):
#   data/ucf101/UCF-101/<Class>/v_<Class>_gXX_cYY.avi
#   data/ucf101/ucfTrainTestlist/{classInd,trainlist01,testlist01}.txt
# Point elsewhere with --cfg-options on data_root / ann_file / class_index
# of the three dataloaders. Training: K_train videos per class of
# trainlist01; validation: K_val per class of testlist01; test: all of it.
_base_ = ['./clip_pipelines.py']
dataset_type = 'UCF101Dataset'
videos = 'data/ucf101/UCF-101'
lists = 'data/ucf101/ucfTrainTestlist'
train_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='SeededSampler', shuffle=True),
    collate_fn=dict(type='video_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=videos,
        ann_file=lists + '/trainlist01.txt',
        class_index=lists + '/classInd.txt',
        pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    batch_size=4,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='video_collate'),
    dataset=dict(
        type=dataset_type,
        data_root=videos,
        ann_file=lists + '/testlist01.txt',
        class_index=lists + '/classInd.txt',
        pipeline={{_base_.test_pipeline}},
        test_mode=True))
test_dataloader = dict(
    val_dataloader,
    dataset=dict(val_dataloader['dataset'], k_shot=None))
