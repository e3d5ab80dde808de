"""The interface every task head implements, and the loss normaliser
they share."""
from abc import ABCMeta, abstractmethod
from typing import Dict, Union

import torch
import torch.distributed as dist
from mmengine.dist import get_world_size
from mmengine.model import BaseModule
from torch import Tensor

from hvlm.structures import SampleList
from hvlm.structures import VideoFeatures


def global_mean(total: Tensor, count: Union[Tensor, int, float]) -> Tensor:
    """``total`` (a loss summed over this rank's labelled items: frames,
    answers, words) divided by the number of such items on *all* ranks, times
    the world size.

    DDP averages the ranks' gradients. If each rank divided by its own count,
    an item on a rank with few labelled items would weigh more than one on a
    rank with many, and W processes with batch b would not train like one
    process with batch W*b. With the global count N every item weighs 1/N
    once DDP's average has divided the world size out again: the gradient
    is the one process's. (mmdet's ``reduce_mean`` of ``avg_factor`` does the
    same.) The value a rank returns is its share of the global mean, scaled
    by the world size, so logs of rank 0 still read as a mean loss.

    It is a collective: every rank must call it as often and in the same
    order, also when its batch holds no labelled item (pass ``count=0``).
    In one process it is ``total / max(count, 1)``.

    Args:
        total: Scalar loss summed over this rank's items.
        count: Number (or summed weight) of this rank's items; no gradient
            flows through it.

    Returns:
        Scalar ``total * world_size / max(global count, 1)``.
    """
    count = torch.as_tensor(count).detach().to(
        device=total.device, dtype=torch.float64).clone()  # [] or [1]
    world_size = get_world_size()
    if world_size > 1:
        dist.all_reduce(count)
    scale = world_size / count.clamp_min(1).reshape(())
    return total * scale.to(total.dtype)


class BaseHead(BaseModule, metaclass=ABCMeta):
    """A task head reads :class:`VideoFeatures` and either scores itself
    against the ground truth in the data samples or writes predictions into
    them, so that the model and the metrics need no task-specific code.
    """

    @abstractmethod
    def forward(self, feats: VideoFeatures):
        """Raw outputs (the model's ``tensor`` mode)."""

    @abstractmethod
    def loss(self, feats: VideoFeatures,
             data_samples: SampleList) -> Dict[str, Tensor]:
        """Losses; keys containing ``'loss'`` are summed by mmengine."""

    @abstractmethod
    def predict(self, feats: VideoFeatures,
                data_samples: SampleList) -> SampleList:
        """Write predictions into ``data_samples`` and return them."""
