# STKET, PredCLS on Action Genome: STTran's config (datasets, schedule,
# hooks) with spatial co-occurrence and temporal transition priors in the
# attention and an ensemble of the stages' heads. SceneGraphPriorsHook
# counts the priors on the training split before training; the checkpoint
# carries them to validation and test.
_base_ = ['./sttran_predcls_ag.py']

model = dict(
    type='STKET',
    spatial_layer=1,
    temporal_layer=3,
    temporal_window=3,  # frames each temporal layer reads
    relation_head=dict(type='RelationHead'))

custom_hooks = [
    dict(type='SceneGraphPriorsHook'),
    dict(type='EarlyStoppingHook', monitor='sg/with_R@20', rule='greater',
         patience=3)
]
