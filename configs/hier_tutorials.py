# The tutorials domain: the general recipe, trained and evaluated on tutorials
# videos only (see hier_sports.py).
_base_ = ['./hier_general.py']

domains = ['tutorials']
train_dataloader = dict(dataset=dict(domains=domains))
val_dataloader = dict(dataset=dict(domains=domains))
test_dataloader = dict(dataset=dict(domains=domains))
