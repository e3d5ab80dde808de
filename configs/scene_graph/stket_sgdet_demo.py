# STKET SGDET on the demo data, with the detections the STTran SGDET demo
# config writes from the demo's ground truth on first use (box jitter,
# missed objects, false positives), so that
#   python tools/train.py configs/scene_graph/stket_sgdet_demo.py
# trains on a fresh clone. Progressive training: from the STKET SGCLS or
# PredCLS demo checkpoint with --cfg-options load_from=PATH.
_base_ = ['./sttran_sgdet_demo.py']

model = dict(
    type='STKET',
    spatial_layer=1,
    temporal_layer=2,
    temporal_window=3,
    relation_head=dict(type='RelationHead'))

custom_hooks = [
    dict(type='SceneGraphPriorsHook'),
    dict(type='EarlyStoppingHook', monitor='sg/with_R@20', rule='greater',
         patience=2)
]
