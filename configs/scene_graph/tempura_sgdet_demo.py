# TEMPURA SGDET on the demo data, with the detections the STTran SGDET demo
# config writes from the demo's ground truth on first use, so that
#   python tools/train.py configs/scene_graph/tempura_sgdet_demo.py
# trains on a fresh clone. Progressive training: from the TEMPURA SGCLS or
# PredCLS demo checkpoint with --cfg-options load_from=PATH.
_base_ = ['./sttran_sgdet_demo.py']

model = dict(
    type='TEMPURA',
    num_mixtures=4,
    uncertainty_threshold=0.5,
    gmm_regularization=0.01,
    memory_lambda=0.5,
    memory_momentum=0.1,
    memory_weighting='both',
    relation_head=dict(type='GMMRelationHead'))
