# The tutorials LoRA fine-tune: the sports recipe (hier_sports_lora-ft.py) with
# the tutorials domain's data and adapter. Needs work_dirs/hier_general/epoch_30.pth,
# which `python tools/train.py configs/hier_general.py` writes.
_base_ = ['./hier_sports_lora-ft.py']

domains = ['tutorials']
train_dataloader = dict(dataset=dict(domains=domains))
val_dataloader = dict(dataset=dict(domains=domains))
test_dataloader = dict(dataset=dict(domains=domains))
model = dict(adapter=dict(train_domains=domains))
