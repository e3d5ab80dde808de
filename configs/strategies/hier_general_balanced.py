# Domain-balanced sampling: every domain is drawn equally often, however
# many videos each has (a video's probability is inversely proportional to
# its domain's size; draws are with replacement). The demo data is already
# balanced; this matters on real data, where one domain often dominates.
_base_ = ['../hier_general.py']

train_dataloader = dict(
    sampler=dict(
        _delete_=True,
        type='DomainWeightedSampler',
        # draws per epoch; None: as many as there are videos
        num_samples=None))
