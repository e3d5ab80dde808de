"""The interface every task head implements."""
from abc import ABCMeta, abstractmethod
from typing import Dict

from mmengine.model import BaseModule
from torch import Tensor

from hvlm.structures import SampleList
from ..backbones.video_features import VideoFeatures


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
