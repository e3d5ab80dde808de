# SceneLLM, SGCLS (ground-truth boxes; object classes predicted by the
# object classifier it shares with STTran) on Action Genome, reading the
# _filtersmall annotations. Progressive training: start from the SceneLLM
# PredCLS checkpoint with --cfg-options load_from=PATH.
_base_ = ['./scenellm_predcls_ag.py']

ag_mode = 'sgcls'
model = dict(mode='sgcls')
train_dataloader = dict(dataset=dict(mode=ag_mode))
val_dataloader = dict(dataset=dict(mode=ag_mode))
test_dataloader = val_dataloader
# progressive training: the PredCLS checkpoint has no object classifier
load_from_allow_missing = [r'^obj_classifier\.']
