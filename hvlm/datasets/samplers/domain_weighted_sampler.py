"""Draw videos so that every domain is seen equally often."""
import math
import numbers
from collections import Counter
from typing import Dict, Iterator, List, Optional, Sized, Tuple

import numpy as np
import torch
from mmengine.dist import get_dist_info, sync_random_seed
from torch.utils.data import Sampler

from hvlm.registry import DATA_SAMPLERS


def read_domains(dataset: Sized, domain_key: str = 'domain') -> List[str]:
    """The domain of every sample, read from the annotations alone.

    ``get_data_info(i)`` (mmengine's ``BaseDataset`` and its wrappers)
    returns an entry of the data list without running the pipeline, so no
    video is opened.

    Raises:
        TypeError: if ``dataset`` has no ``get_data_info``.
        ValueError: if an entry has no ``domain_key``, naming the entry.
    """
    name = type(dataset).__name__
    get_info = getattr(dataset, 'get_data_info', None)
    if get_info is None:
        raise TypeError(
            f'DomainWeightedSampler: {name} has no get_data_info(index), so '
            'the domains cannot be read without loading every sample; use '
            'an mmengine BaseDataset such as VideoDataset')
    if hasattr(dataset, 'full_init'):
        dataset.full_init()
    domains = []
    for i in range(len(dataset)):
        info = get_info(i)
        domain = info.get(domain_key)
        if domain is None:
            where = info.get('filename') or info.get('video_id')
            where = f' ({where})' if where else ''
            root = getattr(dataset, 'data_root', None)
            root = f' of {root}' if root else ''
            raise ValueError(
                f'DomainWeightedSampler: entry {i}{where} of {name}{root} '
                f'has no {domain_key!r}: domain-balanced sampling needs the '
                'domain of every video (VideoDataset reads it from '
                'annotations/metadata.json)')
        domains.append(domain)
    return domains


@DATA_SAMPLERS.register_module()
class DomainWeightedSampler(Sampler):
    """Draw each video with probability inversely proportional to the
    size of its domain, so that every domain is drawn equally often.

    A split of 300 sports, 60 news and 40 tutorial videos, sampled
    uniformly, trains mostly on sports; here each domain gets a third of
    the draws (a sports video ``1 / (3 * 300)`` of them, a tutorial
    ``1 / (3 * 40)``). Draws are with replacement: an epoch of
    ``num_samples`` draws repeats some videos of small domains and leaves
    out some of large ones.

    The protocol is :class:`SeededSampler`'s: it yields ``(index, seed)``
    pairs and ``VideoDataset`` seeds the augmentation with ``seed``, a hash
    of ``(seed, epoch, position of the draw)`` (the position, not the index,
    so a video drawn twice is augmented twice differently). An epoch's
    draws depend only on ``(seed, epoch)`` (``set_epoch``, called by
    ``DistSamplerSeedHook``), so a resumed run draws what the uninterrupted
    run would have. With several processes every rank computes the same
    draws and takes every ``world_size``-th from its rank on: disjoint
    shares of the same length.

    Args:
        dataset (Sized): A dataset with ``get_data_info`` whose entries
            carry ``domain_key``.
        num_samples (int, optional): Draws per epoch over all ranks
            (rounded up to a multiple of the world size); defaults to
            ``len(dataset)``.
        seed (int, optional): Base seed; ``None`` draws one and shares it
            among the ranks.
        domain_key (str): Entry key that holds the domain.
    """

    def __init__(self,
                 dataset: Sized,
                 num_samples: Optional[int] = None,
                 seed: Optional[int] = None,
                 domain_key: str = 'domain') -> None:
        if num_samples is None:
            num_samples = len(dataset)
        if isinstance(num_samples, bool) or not isinstance(
                num_samples, numbers.Integral) or num_samples < 1:
            raise ValueError(f'DomainWeightedSampler: num_samples='
                             f'{num_samples!r} must be a positive integer')
        domains = read_domains(dataset, domain_key)
        if not domains:
            raise ValueError(
                f'DomainWeightedSampler: {type(dataset).__name__} is empty')
        self.rank, self.world_size = get_dist_info()
        self.seed = sync_random_seed() if seed is None else int(seed)
        self.epoch = 0
        counts = Counter(domains)
        self.domain_counts: Dict[str, int] = dict(sorted(counts.items()))
        # p_i = 1 / (D * n_domain(i)): each domain's entries sum to 1 / D.
        self.weights = torch.tensor(
            [1. / (len(counts) * counts[d]) for d in domains],
            dtype=torch.float64)  # [len(dataset)]
        self.num_samples = math.ceil(num_samples / self.world_size)
        self.total_size = self.num_samples * self.world_size

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        draws = torch.multinomial(
            self.weights, self.total_size, replacement=True,
            generator=generator).tolist()  # [total_size], same on all ranks
        for position in range(self.rank, self.total_size, self.world_size):
            seed = np.random.SeedSequence(
                [self.seed, self.epoch, position]).generate_state(1)[0]
            yield draws[position], int(seed)

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Draw the given epoch's samples (``DistSamplerSeedHook`` calls
        this at every epoch start)."""
        self.epoch = epoch
