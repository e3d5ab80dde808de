# TEMPURA, PredCLS on Action Genome: STTran's config (datasets, schedule,
# hooks) with Gaussian-mixture relation heads and the predicate prototype
# memory. The seed's flags -num_mixtures, -uncertainty_threshold and
# -gmm_regularization are the model keys of the same names.
_base_ = ['./sttran_predcls_ag.py']

model = dict(
    type='TEMPURA',
    num_mixtures=4,
    uncertainty_threshold=0.5,
    gmm_regularization=0.01,
    memory_lambda=0.5,
    memory_momentum=0.1,
    memory_weighting='both',
    relation_head=dict(type='GMMRelationHead'))
