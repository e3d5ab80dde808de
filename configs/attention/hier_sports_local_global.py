# hier_sports with Longformer-style LocalGlobalAttention in every block.
# Stage 1 has 256 tokens (8 frames -> 4 tubelet steps x 8 x 8) and stage 2
# 64 (4 x 4 x 4). A sliding window of 32 (16 tokens each side: two rows of
# the 8 x 8 grid) keeps attention local within a frame and to the neighbouring
# step's edge; 8 global tokens (two per tubelet step in stage 1) carry
# information across the clip, so each query sees about 41 of 256 tokens.
_base_ = ['../hier_sports.py']

model = dict(
    backbone=dict(
        attention=dict(
            _delete_=True,
            type='LocalGlobalAttention',
            window_size=32,
            num_global=8,
            sliding=True)))
