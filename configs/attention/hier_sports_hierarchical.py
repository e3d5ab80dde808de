# hier_sports with HierarchicalAttentionBlock (the original's default
# attention type) in every block.
# Stage 1 has 256 tokens (8 frames -> 4 tubelet steps x 8 x 8) and stage 2
# 64 (4 x 4 x 4). window_size=None makes each window one tubelet step (a
# frame of 64 tokens in stage 1, 16 in stage 2): fine attention within the
# frame, and the 3 other frames seen as one pooled token each.
_base_ = ['../hier_sports.py']

model = dict(
    backbone=dict(
        attention=dict(
            _delete_=True,
            type='HierarchicalAttentionBlock',
            window_size=None,
            pool='avg')))
