# tiny_sports with rank 1 killed at its second iteration (fault injection).
_base_ = ['./tiny_sports.py']

custom_imports = dict(
    imports=['hvlm_plugin_example.faults'], allow_failed_imports=False)
custom_hooks = [dict(type='KillRankHook', rank=1, at_iter=2)]
train_cfg = dict(max_epochs=50)
