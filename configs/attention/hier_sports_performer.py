# The main job with FAVOR+ attention (PerformerAttention) in every block.
_base_ = ['../hier_sports.py']

model = dict(
    backbone=dict(
        attention=dict(
            type='PerformerAttention', nb_features=64,
            redraw_interval=1000)))
