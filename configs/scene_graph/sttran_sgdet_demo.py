# STTran SGDET on the demo data, with detections written from the demo's
# ground truth on first use (box jitter, missed objects, false positives;
# tools/misc/write_gt_detections.py writes the same file by hand), so that
#   python tools/train.py configs/scene_graph/sttran_sgdet_demo.py
# trains on a fresh clone. Progressive training (docs/SCENE_GRAPH.md):
# predcls -> sgcls -> sgdet, each from the previous checkpoint with
#   --cfg-options load_from=work_dirs/sttran_sgcls_demo/epoch_N.pth
_base_ = ['./sttran_predcls_demo.py']

ag_mode = 'sgdet'
detections_file = 'data/scene_graph_demo_detections/detections.npz'
detections_demo = dict(jitter=0.05, drop=0.1, false_positives=0.5, seed=0)
model = dict(mode='sgdet', assign_iou_threshold=0.5)
train_dataloader = dict(
    dataset=dict(mode=ag_mode, detections_file=detections_file,
                 detections_demo=detections_demo))
val_dataloader = dict(
    dataset=dict(mode=ag_mode, detections_file=detections_file,
                 detections_demo=detections_demo))
test_dataloader = val_dataloader
# progressive training: a PredCLS checkpoint has no object classifier, and
# none has the detector-feature projection (model.det_feature_dim)
load_from_allow_missing = [r'^obj_classifier\.', r'^det_feature_fc\.']
