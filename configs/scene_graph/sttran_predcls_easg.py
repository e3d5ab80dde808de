# STTran PredCLS on EASG (Ego4D action scene graphs), fine-tuned from an
# Action Genome checkpoint, as the seed's
#   python train.py -mode predcls -data_path data/EASG \
#       -resume_from ag_checkpoint.pth
# does. Each EASG graph becomes (camera wearer, predicate, object) pairs in
# its pre / pnr / post frames: the verb fills the single-label group, the
# relations the multi-label one (hvlm/datasets/easg.py says how). The class
# heads differ in size from Action Genome's (objects, verbs, relations):
# load_from_allow_shape_mismatch lets exactly those start from their
# initialisation, and the log names each with both shapes.
#   python tools/train.py configs/scene_graph/sttran_predcls_easg.py \
#       --cfg-options load_from=work_dirs/sttran_predcls_ag/epoch_10.pth
# The EASGDataset log line gives the vocabulary sizes it read; the model's
# num_classes and head sizes below must match them (a mismatch is refused
# with the key to set).
_base_ = ['./sttran_predcls_ag.py']

easg_root = 'data/easg'
# the release's vocabulary: 391 objects, 198 verbs, 13 relations
num_objects, num_verbs, num_relations = 391, 198, 13
frame_scale = (270, 480)
easg_pipeline = [
    dict(type='LoadSceneGraphFrames', scale=frame_scale),
    dict(type='PackSceneGraphInputs'),
]
train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='EASGDataset',
        data_root=easg_root,
        split='train',
        on_bad='skip',
        pipeline=easg_pipeline))
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='EASGDataset',
        data_root=easg_root,
        split='val',
        on_bad='skip',
        pipeline=easg_pipeline,
        test_mode=True))
test_dataloader = val_dataloader

model = dict(
    num_classes=num_objects + 2,  # __background__, camera_wearer, objects
    relation_head=dict(
        type='RelationHead',
        num_attention=num_verbs,  # the graph's verb, single-label
        num_spatial=0,  # EASG has no spatial group
        num_contacting=num_relations))  # the relations, multi-label

# an Action Genome STTran checkpoint (sttran_predcls_ag.py's run)
load_from = 'work_dirs/sttran_predcls_ag/epoch_10.pth'
load_from_allow_shape_mismatch = [r'^class_embed\.', r'^relation_head\.']
# fine-tuning: a tenth of the Action Genome learning rate, 5 epochs
optim_wrapper = dict(optimizer=dict(lr=1e-6))
max_epochs = 5
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=200),
    dict(type='MultiStepLR', milestones=[4], gamma=0.1, by_epoch=True),
]
