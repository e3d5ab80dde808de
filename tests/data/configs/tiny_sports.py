# hier_sports.py shrunk for tests: the same code paths, tiny widths and data.
# Tests point the three data_roots at a generated tiny demo set with
# --cfg-options (see tests/test_tools).
_base_ = ['../../../configs/hier_sports.py']

model = dict(
    backbone=dict(embed_dims=(16, 32), depths=(1, 1), num_heads=(2, 2)),
    head=dict(
        heads=dict(
            action_detection=dict(in_channels=32),
            video_qa=dict(
                in_channels=32, embed_dims=16, num_layers=1, num_heads=2,
                num_answers=64, vocab_size=256),
            video_captioning=dict(
                in_channels=32, embed_dims=16, num_layers=1, num_heads=2,
                vocab_size=256))))

train_cfg = dict(max_epochs=2)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.5, by_epoch=True, begin=0, end=1),
]
default_hooks = dict(logger=dict(interval=1))
_loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader = _loader
val_dataloader = _loader
test_dataloader = _loader
