# A user's config: inherit hier_sports, import their package, swap attention.
_base_ = ['./tiny_sports.py']

custom_imports = dict(
    imports=['hvlm_plugin_example'], allow_failed_imports=False)
model = dict(
    backbone=dict(attention=dict(_delete_=True, type='TheirAttention')))
