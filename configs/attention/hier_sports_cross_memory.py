# hier_sports with CrossMemoryAttention in every block.
# Stage 1 has 256 tokens (8 frames -> 4 tubelet steps x 8 x 8) and stage 2
# 64 (4 x 4 x 4). Segments are tubelet steps (segment_len=None with a grid):
# step t attends to itself (64 tokens) and to a bank of at most 96 entries
# compressed from the earlier steps, i.e. the bank keeps 1.5 frames' worth of
# the past, so compression starts at the third step. Training clips are
# shuffled, so the bank is not carried across calls; set carry_memory=True
# (and call reset_memory() per video) to stream one long video clip by clip.
_base_ = ['../hier_sports.py']

model = dict(
    backbone=dict(
        attention=dict(
            _delete_=True,
            type='CrossMemoryAttention',
            memory_size=96,
            segment_len=None,
            carry_memory=False)))
