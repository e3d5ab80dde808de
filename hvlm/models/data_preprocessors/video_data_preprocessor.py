"""Turn a collated batch of uint8 clips into a normalised float tensor."""
from typing import Optional, Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from hvlm.registry import MODELS


@MODELS.register_module()
class VideoDataPreprocessor(BaseDataPreprocessor):
    """Stack, cast, normalise and move to the model's device.

    The pipeline keeps clips as uint8 so that workers ship a quarter of the
    bytes; the float conversion happens here, once, on the model's device.
    Only ``inputs`` and ``data_samples`` are returned: the collate function's
    bookkeeping (``skipped``) must not reach the model's ``forward``.

    Args:
        mean (Sequence[float], optional): Per-channel mean on the 0-255
            scale; ``None`` skips normalisation.
        std (Sequence[float], optional): Per-channel std on the 0-255 scale;
            given exactly when ``mean`` is. A model with a pretrained
            encoder fills both from its checkpoint
            (:meth:`use_statistics`).
        to_float (bool): Cast to float32. Must stay True when normalising.
        cached_features (bool): The batch holds a stem encoder's patch
            tokens ``[num_clips, T, h, w, C]`` from a feature cache
            (``LoadCachedFeatures``), not frames: they are stacked and
            cast but never normalised, and the model skips its ViT.
    """

    def __init__(self,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 to_float: bool = True,
                 cached_features: bool = False) -> None:
        super().__init__()
        self.cached_features = bool(cached_features)
        if (mean is None) != (std is None):
            raise ValueError(f'mean={mean} and std={std} must be given '
                             'together (or both None)')
        self.normalise = mean is not None
        if self.normalise:
            if len(mean) != len(std):
                raise ValueError(f'mean={list(mean)} and std={list(std)} '
                                 'must have one value per channel each')
            if any(s <= 0 for s in std):
                raise ValueError(f'std={list(std)} must be positive')
            if not to_float:
                raise ValueError('to_float=False cannot be combined with '
                                 'mean/std: normalised values are floats')
            self._set_statistics(mean, std)
        self.to_float = to_float

    def _set_statistics(self, mean: Sequence[float],
                        std: Sequence[float]) -> None:
        # [1, 1, C, 1, 1, 1] broadcasts over [B, num_clips, C, T, H, W].
        shape = (1, 1, -1, 1, 1, 1)
        self.register_buffer(
            'mean', torch.tensor(mean, dtype=torch.float32).view(shape),
            persistent=False)
        self.register_buffer(
            'std', torch.tensor(std, dtype=torch.float32).view(shape),
            persistent=False)
        self.normalise = True

    def use_statistics(self, mean: Sequence[float], std: Sequence[float],
                       source: str) -> None:
        """Normalise with the statistics a pretrained encoder was trained
        with (``source`` names where they come from).

        A preprocessor configured without ``mean``/``std`` adopts them; one
        configured with the same values keeps them; one configured with
        other values is an error, since frames normalised otherwise than in
        pretraining quietly degrade every feature.
        """
        if self.normalise:
            same = len(mean) == self.mean.numel() and torch.allclose(
                self.mean.flatten().cpu(), torch.tensor(mean).float(),
                atol=1e-3) and torch.allclose(
                    self.std.flatten().cpu(), torch.tensor(std).float(),
                    atol=1e-3)
            if not same:
                raise ValueError(
                    f'data_preprocessor mean={self.mean.flatten().tolist()} '
                    f'std={self.std.flatten().tolist()} differ from the '
                    f'pretrained encoder\'s mean={list(mean)} std={list(std)}'
                    f' ({source}); set data_preprocessor.mean/std to None '
                    'to use the encoder\'s')
            return
        if not self.to_float:
            raise ValueError('to_float=False cannot be combined with the '
                             f'pretrained encoder\'s statistics ({source})')
        self._set_statistics(mean, std)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Preprocess one collated batch.

        Args:
            data (dict): ``inputs``: list of ``[num_clips, C, T, H, W]``
                tensors; ``data_samples``: list of VideoDataSample; other
                keys are dropped.
            training (bool): Unused (no batch augments yet).

        Returns:
            dict: ``inputs`` ``[B, num_clips, C, T, H, W]`` (``None`` for an
            empty batch) and ``data_samples``.
        """
        inputs = data.get('inputs')
        data_samples = data.get('data_samples') or []
        if inputs is None or len(inputs) == 0:
            return dict(inputs=None, data_samples=list(data_samples))
        shapes = {tuple(x.shape) for x in inputs}
        if len(shapes) != 1:
            raise ValueError(
                f'cannot stack clips of different shapes {sorted(shapes)}; '
                'make the pipeline crop/resize every video to one size')
        batch = self.cast_data(
            dict(inputs=torch.stack(list(inputs)),
                 data_samples=list(data_samples)))
        inputs = batch['inputs']  # [B, num_clips, C, T, H, W]
        if not self.cached_features and inputs.dim() != 6:
            raise ValueError('each input must be [num_clips, C, T, H, W], '
                             f'got {tuple(inputs.shape[1:])}')
        if self.to_float:
            inputs = inputs.float()
        if self.cached_features:
            if not inputs.is_floating_point():
                raise ValueError(
                    'cached_features=True but the inputs are '
                    f'{inputs.dtype} frames; the pipeline must start with '
                    'LoadCachedFeatures')
            return dict(inputs=inputs, data_samples=batch['data_samples'])
        if self.normalise:
            if inputs.shape[2] != self.mean.shape[2]:
                raise ValueError(
                    f'inputs have {inputs.shape[2]} channels but mean/std '
                    f'have {self.mean.shape[2]}')
            inputs = (inputs - self.mean) / self.std
        return dict(inputs=inputs, data_samples=batch['data_samples'])
