# The main job with a bidirectional Mamba layer as the token mixer of every
# block (no attention at all).
_base_ = ['../hier_sports.py']

model = dict(
    backbone=dict(
        attention=dict(
            type='MambaLayer', d_state=16, d_conv=4, expand=2,
            bidirectional=True)))
