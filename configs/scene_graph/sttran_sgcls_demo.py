# STTran SGCLS on the demo data: the second step of progressive training
# (predcls -> sgcls -> sgdet), from the PredCLS checkpoint with
#   --cfg-options load_from=work_dirs/sttran_predcls_demo/epoch_N.pth
_base_ = ['./sttran_predcls_demo.py']

ag_mode = 'sgcls'
model = dict(mode='sgcls')
train_dataloader = dict(dataset=dict(mode=ag_mode))
val_dataloader = dict(dataset=dict(mode=ag_mode))
test_dataloader = val_dataloader
# progressive training: the PredCLS checkpoint has no object classifier
load_from_allow_missing = [r'^obj_classifier\.']
