"""Stack uint8 images (or frames), run batch augments, normalise."""
from typing import List, Optional, Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from hvlm.registry import MODELS


@MODELS.register_module()
class ImageDataPreprocessor(BaseDataPreprocessor):
    """Turn a collated batch of uint8 images into normalised floats.

    Images ``[C, H, W]`` (or frames / views ``[V, C, H, W]``) are stacked,
    scaled to ``[0, 1]``, passed through ``batch_augments`` in training
    (per-sample SimCLR views, severity presets, MixUp/CutMix: every
    augment is ``augment(inputs, data_samples) -> (inputs, data_samples)``
    and runs on ``[0, 1]`` floats), then normalised with ``mean``/``std``
    (0-255 scale, as for videos). Augments run on the model's device,
    batched, in torch.

    Args:
        mean (Sequence[float], optional): Per-channel mean, 0-255 scale;
            ``None`` skips normalisation.
        std (Sequence[float], optional): Per-channel std, 0-255 scale.
        batch_augments (list[dict], optional): ``MODELS`` configs applied in
            order during training only.
    """

    def __init__(self,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 batch_augments: Optional[List[dict]] = None) -> None:
        super().__init__()
        if (mean is None) != (std is None):
            raise ValueError(f'mean={mean} and std={std} must be given '
                             'together (or both None)')
        self.normalise = mean is not None
        if self.normalise:
            if len(mean) != len(std) or any(s <= 0 for s in std):
                raise ValueError(f'mean={list(mean)} and std={list(std)} '
                                 'need one value per channel, std > 0')
            self.register_buffer(
                'mean', torch.tensor(mean, dtype=torch.float32) / 255.,
                persistent=False)
            self.register_buffer(
                'std', torch.tensor(std, dtype=torch.float32) / 255.,
                persistent=False)
        self.batch_augments = [
            MODELS.build(a) if isinstance(a, dict) else a
            for a in (batch_augments or [])
        ]

    def normalize(self, inputs: torch.Tensor) -> torch.Tensor:
        """``[..., C, H, W]`` in [0, 1] -> normalised."""
        if not self.normalise:
            return inputs
        if inputs.shape[-3] != self.mean.numel():
            raise ValueError(f'inputs have {inputs.shape[-3]} channels but '
                             f'mean/std have {self.mean.numel()}')
        shape = (-1, 1, 1)
        return (inputs - self.mean.view(shape)) / self.std.view(shape)

    def forward(self, data: dict, training: bool = False) -> dict:
        """``inputs``: list of uint8 ``[C, H, W]`` / ``[V, C, H, W]``;
        returns ``inputs`` ``[B, ...]`` float (``None`` for an empty batch)
        and ``data_samples``; other keys (``skipped``) are dropped."""
        inputs = data.get('inputs')
        data_samples = list(data.get('data_samples') or [])
        if inputs is None or len(inputs) == 0:
            return dict(inputs=None, data_samples=data_samples)
        shapes = {tuple(x.shape) for x in inputs}
        if len(shapes) != 1:
            raise ValueError(
                f'cannot stack images of different shapes {sorted(shapes)}; '
                'make the pipeline resize every image to one size')
        batch = self.cast_data(
            dict(inputs=torch.stack(list(inputs)), data_samples=data_samples))
        inputs, data_samples = batch['inputs'], batch['data_samples']
        # uint8 pixels -> [0, 1]; float inputs are taken as [0, 1] already
        inputs = inputs.float() / 255. if inputs.dtype == torch.uint8 \
            else inputs.float()
        if training:
            for augment in self.batch_augments:
                inputs, data_samples = augment(inputs, data_samples)
        return dict(inputs=self.normalize(inputs), data_samples=data_samples)
