# tiny_sports whose DataLoader worker is SIGKILLed on one video.
_base_ = ['./tiny_sports.py']

custom_imports = dict(
    imports=['hvlm_plugin_example.worker_faults'], allow_failed_imports=False)
train_dataloader = dict(
    num_workers=1,
    dataset=dict(
        type='WorkerKillingVideoDataset', kill_on='sports_training_0001'))
