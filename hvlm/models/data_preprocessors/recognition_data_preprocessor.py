"""VideoDataPreprocessor plus batch augments for recognition."""
from typing import Optional

from hvlm.registry import MODELS
from .video_data_preprocessor import VideoDataPreprocessor


@MODELS.register_module()
class RecognitionDataPreprocessor(VideoDataPreprocessor):
    """Stack, normalise, then (in training only) apply ``batch_augments``
    such as :class:`VideoMix`.

    Args:
        batch_augments (dict, optional): A ``MODELS`` config called as
            ``aug(inputs, data_samples) -> (inputs, data_samples)`` on the
            normalised ``[B, V, C, T, H, W]`` batch.
        **kwargs: :class:`VideoDataPreprocessor` arguments.
    """

    def __init__(self, batch_augments: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.batch_augments = None if batch_augments is None else \
            MODELS.build(batch_augments)

    def forward(self, data: dict, training: bool = False) -> dict:
        out = super().forward(data, training)
        if training and self.batch_augments is not None and \
                out['inputs'] is not None:
            out['inputs'], out['data_samples'] = self.batch_augments(
                out['inputs'], out['data_samples'])
        return out
