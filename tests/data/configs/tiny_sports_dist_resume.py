# tiny_sports for the 2-process resume test
# (tests/test_engine/test_dist_resume.py): every domain, so that each rank
# has 3 steps of batches of its own shapes per epoch (its dropout masks
# then leave its generators in a state of their own); training only.
_base_ = ['./tiny_sports.py']

train_dataloader = dict(dataset=dict(domains=None))
val_cfg = None
val_dataloader = None
val_evaluator = None
default_hooks = dict(checkpoint=dict(save_best=None, max_keep_ckpts=-1))
visualizer = dict(vis_backends=[dict(type='LocalVisBackend')])
