# Action Genome in its released layout (annotations/*.pkl, frames/VID.mp4/
# NNNNNN.png). Point data_root at your copy, per split if they differ:
#   --cfg-options train_dataloader.dataset.data_root=/data/ag \
#                 test_dataloader.dataset.data_root=/data/ag
# AG has no validation split: as the reference does, validation runs on the
# test split. `ag_mode` picks the annotation file (predcls: all boxes;
# sgcls/sgdet: the _filtersmall file); keep it equal to model.mode.
ag_root = 'data/action_genome'
ag_mode = 'predcls'
frame_scale = (270, 480)  # (H, W) frames are resized to

train_pipeline = [
    dict(type='LoadSceneGraphFrames', scale=frame_scale),
    dict(type='PackSceneGraphInputs'),
]
test_pipeline = train_pipeline

train_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='scene_graph_collate'),
    dataset=dict(
        type='ActionGenomeDataset',
        data_root=ag_root,
        split='train',
        mode=ag_mode,
        datasize='large',
        on_bad='skip',
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='scene_graph_collate'),
    dataset=dict(
        type='ActionGenomeDataset',
        data_root=ag_root,
        split='test',
        mode=ag_mode,
        datasize='large',
        on_bad='skip',
        pipeline=test_pipeline,
        test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(type='SceneGraphRecall')
test_evaluator = val_evaluator
