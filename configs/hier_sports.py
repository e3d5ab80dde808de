# The sports domain: the general recipe, trained and evaluated on sports
# videos only. Another domain is the same three lines with its name.
_base_ = ['./hier_general.py']

domains = ['sports']
train_dataloader = dict(dataset=dict(domains=domains))
val_dataloader = dict(dataset=dict(domains=domains))
test_dataloader = dict(dataset=dict(domains=domains))
