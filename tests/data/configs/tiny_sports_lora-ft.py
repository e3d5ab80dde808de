# configs/hier_sports_lora-ft.py at tiny_sports.py's widths, so that it
# fine-tunes a checkpoint of tiny_sports.py (tests set load_from with
# --cfg-options).
_base_ = ['../../../configs/hier_sports_lora-ft.py']

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

max_epochs = 1
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1))
_loader = dict(batch_size=2, num_workers=0, persistent_workers=False)
train_dataloader = _loader
val_dataloader = _loader
test_dataloader = _loader
