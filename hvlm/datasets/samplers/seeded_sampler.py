"""A sampler whose every draw carries its own augmentation seed."""
from typing import Iterator, Tuple

import numpy as np
from mmengine.dataset import DefaultSampler

from hvlm.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class SeededSampler(DefaultSampler):
    """``DefaultSampler`` that yields ``(index, seed)`` pairs.

    With DataLoader workers, mmengine seeds each worker once from
    ``(seed, rank, worker id)``: which augmentation a sample gets then
    depends on which worker loads it and on how many batches that worker
    loaded before — and a resumed run restarts the workers, so its epochs
    are augmented differently from the uninterrupted run's. Here the seed of
    each draw is a hash of ``(seed, epoch, index)`` and ``VideoDataset``
    seeds numpy with it before the pipeline runs: the same run, resumed or
    not, with any number of workers, sees the same augmented samples.

    Args: as ``DefaultSampler`` (``shuffle``, ``seed``, ``round_up``).
    """

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        for index in super().__iter__():
            seed = np.random.SeedSequence(
                [self.seed, self.epoch, index]).generate_state(1)[0]
            yield index, int(seed)
