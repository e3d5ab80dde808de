# tiny_llm.py (stage 1: no LoRA) sharded with FSDP over the processes, for
# the test that 2 processes x batch 2 train like 1 process x batch 4.
_base_ = ['./tiny_llm.py']

runner_type = 'HVLMFlexibleRunner'
# sharded checkpoints: each rank writes its own part, epoch_N.pth/rankR.pth
strategy = dict(type='FSDPStrategy', state_dict_cfg='local')
model = dict(
    backbone=dict(drop_path_rate=0.),
    head=dict(
        heads=dict(
            action_detection=dict(dropout=0.),
            language=dict(llm=dict(lora=None)))))
custom_hooks = []
train_dataloader = dict(dataset=dict(domains=None))
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='SGD', lr=0.05, momentum=0.9),
    paramwise_cfg=None,
    clip_grad=None)
val_cfg = None
val_dataloader = None
val_evaluator = None
default_hooks = dict(checkpoint=dict(save_best=None, max_keep_ckpts=-1))
