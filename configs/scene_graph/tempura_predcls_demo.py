# TEMPURA PredCLS on the demo data (generated on first use under
# data/scene_graph_demo): STTran's demo config (data, model size, schedule)
# with TEMPURA's heads and memory.
_base_ = ['./sttran_predcls_demo.py']

model = dict(
    type='TEMPURA',
    num_mixtures=4,
    uncertainty_threshold=0.5,
    gmm_regularization=0.01,
    memory_lambda=0.5,
    memory_momentum=0.1,
    memory_weighting='both',
    relation_head=dict(type='GMMRelationHead'))
