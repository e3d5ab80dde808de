# tiny_sports whose data directory changes under the running job: before
# epoch 2 one training video is deleted, one truncated, one replaced by
# another valid video, a new file appears, and a validation video is
# deleted (tests/test_tools/test_data_dir_changes.py). Point the data roots
# at a copy of the data: the hook damages it.
_base_ = ['./tiny_sports.py']

custom_imports = dict(
    imports=['hvlm_plugin_example.data_faults'], allow_failed_imports=False)
custom_hooks = [
    dict(
        type='DataDirFaultHook',
        at_epoch=2,
        delete=[
            'training/videos/sports_training_0001.mp4',
            'validation/videos/sports_validation_0001.mp4'
        ],
        truncate=['training/videos/news_training_0002.mp4'],
        replace={
            'training/videos/general_training_0000.mp4':
            'validation/videos/general_validation_0001.mp4'
        },
        add={
            'training/videos/extra_training_0000.mp4':
            'test/videos/news_test_0000.mp4'
        })
]
train_cfg = dict(max_epochs=3)
# Every domain (12 videos), read by persistent workers that were started
# before the directory changed.
train_dataloader = dict(
    num_workers=2, persistent_workers=True, dataset=dict(domains=None))
