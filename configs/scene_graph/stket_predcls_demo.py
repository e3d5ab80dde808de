# STKET PredCLS on the demo data (generated on first use under
# data/scene_graph_demo): STTran's demo config (data, model size, schedule)
# with STKET's priors, knowledge-embedded layers and ensemble.
_base_ = ['./sttran_predcls_demo.py']

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
