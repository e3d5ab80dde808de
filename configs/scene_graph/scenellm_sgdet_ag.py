# SceneLLM, SGDET (a detector's boxes; classes and predicates predicted) on
# Action Genome, reading the _filtersmall annotations and a per-frame
# detections file (format in hvlm/datasets/scene_graph_detections.py),
# matched to the ground truth at IoU > 0.5 for training as STTran does.
# Progressive training: start from the SceneLLM SGCLS (or PredCLS)
# checkpoint with --cfg-options load_from=PATH, and point detections_file
# at your detector's output per split.
_base_ = ['./scenellm_predcls_ag.py']

ag_mode = 'sgdet'
detections_file = 'data/action_genome/detections.npz'
model = dict(mode='sgdet', assign_iou_threshold=0.5)
train_dataloader = dict(
    dataset=dict(mode=ag_mode, detections_file=detections_file))
val_dataloader = dict(
    dataset=dict(mode=ag_mode, detections_file=detections_file))
test_dataloader = val_dataloader
# progressive training: a PredCLS checkpoint has no object classifier, and
# none has the detector-feature projection (model.det_feature_dim)
load_from_allow_missing = [r'^obj_classifier\.', r'^det_feature_fc\.']
