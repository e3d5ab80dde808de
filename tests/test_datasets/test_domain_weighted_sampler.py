"""DomainWeightedSampler: every domain drawn equally often, deterministic
in (seed, epoch), disjoint equal shares per rank, domains read without
decoding."""
import math
import os.path as osp
from collections import Counter

import pytest
from mmengine.config import Config

import hvlm.datasets.samplers.domain_weighted_sampler as dws
from hvlm.registry import DATA_SAMPLERS, DATASETS

REPO = osp.join(osp.dirname(__file__), '..', '..')
BALANCED = osp.join(REPO, 'configs', 'strategies', 'hier_general_balanced.py')

# 70 / 20 / 10: uniform sampling sees sports 7 times as often as tutorials
SIZES = dict(sports=70, news=20, tutorials=10)


class AnnotationsOnly:
    """A dataset of annotations: ``get_data_info`` as mmengine's
    BaseDataset; loading a sample is an error."""

    def __init__(self, domains):
        self.data_list = [dict(video_id=f'v{i}', domain=d)
                          for i, d in enumerate(domains)]

    def __len__(self):
        return len(self.data_list)

    def get_data_info(self, i):
        return dict(self.data_list[i])

    def __getitem__(self, i):
        raise AssertionError('the sampler must not load samples')


def imbalanced():
    return AnnotationsOnly(
        [d for d, n in SIZES.items() for _ in range(n)])


def domain_shares(dataset, indices):
    counts = Counter(dataset.data_list[i]['domain'] for i in indices)
    return {d: counts[d] for d in SIZES}


def test_domains_are_drawn_equally_often():
    dataset = imbalanced()
    n = 9000
    sampler = DATA_SAMPLERS.build(
        dict(type='DomainWeightedSampler', dataset=dataset, num_samples=n,
             seed=0))
    draws = [i for i, _ in sampler]
    assert len(draws) == len(sampler) == n
    # each domain's count is Binomial(n, 1/3): allow 5 standard deviations
    p = 1 / len(SIZES)
    tol = 5 * math.sqrt(n * p * (1 - p))
    shares = domain_shares(dataset, draws)
    assert all(abs(c - n * p) < tol for c in shares.values()), (shares, tol)
    # within a domain every video is equally likely: 1 / (3 * 10) each for
    # the tutorials
    per_video = Counter(draws)
    q = p / SIZES['tutorials']
    tol_video = 5 * math.sqrt(n * q * (1 - q))
    for i, info in enumerate(dataset.data_list):
        if info['domain'] == 'tutorials':
            assert abs(per_video[i] - n * q) < tol_video, (i, per_video[i])

    # the unweighted sampler sees the domains as often as they occur
    uniform = DATA_SAMPLERS.build(
        dict(type='SeededSampler', dataset=dataset, shuffle=True, seed=0))
    drawn = []
    for epoch in range(n // len(dataset)):
        uniform.set_epoch(epoch)
        drawn += [i for i, _ in uniform]
    shares = domain_shares(dataset, drawn)
    assert any(abs(c - n * p) > tol for c in shares.values()), shares


def test_same_seed_and_epoch_same_draws():

    def draws(epoch, seed=3):
        sampler = DATA_SAMPLERS.build(
            dict(type='DomainWeightedSampler', dataset=imbalanced(),
                 seed=seed))
        sampler.set_epoch(epoch)
        return list(sampler)

    first = draws(0)
    assert len(first) == len(imbalanced())  # num_samples defaults to it
    assert draws(0) == first  # a new sampler (a resumed run) agrees
    assert draws(1) != first
    assert draws(0, seed=4) != first
    # every draw has its own augmentation seed, also a video drawn twice
    assert len({seed for _, seed in first}) == len(first)


def test_ranks_take_disjoint_equal_shares(monkeypatch):
    """3 ranks, 100 draws: 34 each, and interleaved they are exactly the
    single process's 102 draws (seeds included)."""
    world = 3

    def build(rank, world_size, num_samples):
        monkeypatch.setattr(dws, 'get_dist_info',
                            lambda: (rank, world_size))
        sampler = DATA_SAMPLERS.build(
            dict(type='DomainWeightedSampler', dataset=imbalanced(),
                 num_samples=num_samples, seed=7))
        sampler.set_epoch(2)
        return list(sampler)

    shares = [build(rank, world, 100) for rank in range(world)]
    assert [len(s) for s in shares] == [34] * world
    single = build(0, 1, 102)
    assert [shares[k % world][k // world] for k in range(102)] == single


def test_reads_video_dataset_domains_without_decoding(tiny_demo_root,
                                                      monkeypatch):
    """From the balanced config: domains come from the annotations (no
    sample is prepared), and a DataLoader over VideoDataset takes the
    (index, seed) draws."""
    from hvlm.engine.runner import HVLMRunner
    from hvlm.utils.config import share_vocabulary
    from hvlm.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(BALANCED)
    cfg.train_dataloader.dataset.data_root = osp.join(tiny_demo_root,
                                                      'training')
    share_vocabulary(cfg)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    prepare = type(dataset).prepare_data

    def refuse(self, idx):
        raise AssertionError('the sampler decoded a video')

    monkeypatch.setattr(type(dataset), 'prepare_data', refuse)
    sampler = DATA_SAMPLERS.build(dict(cfg.train_dataloader.sampler,
                                       dataset=dataset, seed=0))
    expected = Counter(
        dataset.get_data_info(i)['domain'] for i in range(len(dataset)))
    assert sampler.domain_counts == dict(sorted(expected.items()))
    monkeypatch.setattr(type(dataset), 'prepare_data', prepare)

    loader = dict(cfg.train_dataloader, dataset=dataset, batch_size=4,
                  num_workers=0, persistent_workers=False,
                  sampler=dict(cfg.train_dataloader.sampler, seed=0))
    loaded = [sample.video_id
              for batch in HVLMRunner.build_dataloader(loader)
              for sample in batch['data_samples']]
    assert loaded == [dataset.get_data_info(i)['video_id']
                      for i, _ in sampler]


def test_dataset_without_domains_is_named():
    dataset = AnnotationsOnly(['sports', 'news'])
    dataset.data_list[1] = dict(video_id='v1')
    with pytest.raises(ValueError,
                       match=r"entry 1 \(v1\) of AnnotationsOnly has no "
                       r"'domain'"):
        DATA_SAMPLERS.build(
            dict(type='DomainWeightedSampler', dataset=dataset, seed=0))
    with pytest.raises(TypeError, match='list has no get_data_info'):
        DATA_SAMPLERS.build(
            dict(type='DomainWeightedSampler', dataset=[1, 2], seed=0))
    with pytest.raises(ValueError, match='num_samples=0 must be a positive'):
        DATA_SAMPLERS.build(
            dict(type='DomainWeightedSampler', dataset=imbalanced(),
                 num_samples=0, seed=0))
