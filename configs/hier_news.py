# The news domain: the general recipe, trained and evaluated on news
# videos only (see hier_sports.py).
_base_ = ['./hier_general.py']

domains = ['news']
train_dataloader = dict(dataset=dict(domains=domains))
val_dataloader = dict(dataset=dict(domains=domains))
test_dataloader = dict(dataset=dict(domains=domains))
