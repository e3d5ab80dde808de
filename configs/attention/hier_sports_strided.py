# hier_sports with StridedAttention in every block.
# Stage 1 has 256 tokens (8 frames -> 4 tubelet steps x 8 x 8) and stage 2
# 64 (4 x 4 x 4). window_size=64 is one tubelet step of stage 1 (a whole
# frame), and stride=4 adds 64 tokens spread over all 4 steps, so each query
# sees its frame in full plus a quarter of the clip (about half of stage 1).
# In stage 2 the window covers the whole clip: full attention there.
_base_ = ['../hier_sports.py']

model = dict(
    backbone=dict(
        attention=dict(
            _delete_=True, type='StridedAttention', stride=4,
            window_size=64)))
