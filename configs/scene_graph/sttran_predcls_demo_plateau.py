# The seed's `-scheduler plateau` on the demo: after the warm-up, the
# learning rate is multiplied by `factor` whenever validation R@20 (with
# constraint) has not risen for `patience` validations in a row
# (mmengine's ReduceOnPlateauLR, stepped by ParamSchedulerHook after each
# validation; so validate every epoch).
_base_ = ['./sttran_predcls_demo.py']

train_cfg = dict(val_interval=1)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=20),
    dict(type='ReduceOnPlateauLR', monitor='sg/with_R@20', rule='greater',
         factor=0.5, patience=1, by_epoch=True),
]
