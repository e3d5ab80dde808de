# The main job with elu+1 linear attention plus an exact local branch over
# one frame of the first stage (8 x 8 tokens = 64) in every block.
_base_ = ['../hier_sports.py']

model = dict(
    backbone=dict(
        attention=dict(
            type='LinearAttentionBlock', kernel_type='elu',
            local_window=64)))
