"""A pretrained image encoder's patch tokens as the first tokens of the
hierarchical encoder."""
import math
from typing import Tuple

import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor


class FrameTokenStem(BaseModule):
    """Encode every frame with a pretrained image encoder, average the
    patch tokens of ``t`` consecutive frames and project them to the first
    stage's width. It stands where :class:`TubeletEmbedding` stands and
    returns the same thing: tokens in ``(t, h, w)`` order and their grid.

    Why average ``t`` frames rather than keep every frame: the image
    encoder costs the same per frame either way, but the hierarchical
    stages after it attend over ``T/t`` times fewer tokens (attention
    ``t**2`` times cheaper), and a token that stands for ``t`` frames is
    what :class:`VideoFeatures` already describes (``temporal_patch``), so
    heads, mergers and their configs work unchanged. The mean keeps the
    tokens in the encoder's own feature space (a learned mix would start
    from random weights); order within the ``t`` frames is lost, which the
    time position embedding added afterwards cannot restore, so ``t=1``
    is the choice for fine temporal detail. A clip whose length ``t`` does
    not divide ends in a shorter group, averaged over the frames it has
    (no zero frames diluting it).

    A LayerNorm comes before the learned projection: CLIP's patch tokens
    are taken before its final norm, at whatever scale its residual stream
    has (trained ViTs are known to carry a few very large channels);
    normalised, any encoder's tokens reach the projection at the scale its
    initialisation assumes, so one config fits every encoder.

    Args:
        encoder (nn.Module): A built image encoder with ``embed_dims``,
            ``patch_size`` and a forward returning a ``FrameEncoding``
            (:class:`HFVisionEncoder`).
        embed_dims (int): Width of the first stage.
        temporal_patch (int): Frames ``t`` averaged into one token.
    """

    def __init__(self, encoder: nn.Module, embed_dims: int,
                 temporal_patch: int) -> None:
        super().__init__()
        if not isinstance(temporal_patch, int) or temporal_patch < 1:
            raise ValueError(f'temporal_patch={temporal_patch!r} must be a '
                             'positive integer')
        self.encoder = encoder
        self.temporal_patch = temporal_patch
        self.patch_size = (temporal_patch, encoder.patch_size,
                           encoder.patch_size)
        self.norm = nn.LayerNorm(encoder.embed_dims)
        self.proj = nn.Linear(encoder.embed_dims, embed_dims)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int, int]]:
        """Embed normalised clips ``x [B, C, T, H, W]``.

        Returns:
            tuple: tokens ``[B, T0*h*w, C0]`` with ``T0 = ceil(T / t)`` and
            the grid ``(T0, h, w)``.
        """
        return self.embed_tokens(self.encoder(x).patch_tokens)

    def embed_tokens(self, tokens: Tensor
                     ) -> Tuple[Tensor, Tuple[int, int, int]]:
        """The same from the encoder's patch tokens ``[B, T, h, w, Ce]``,
        computed earlier (a feature cache) or by :meth:`forward`."""
        B, T, h, w, _ = tokens.shape
        t = self.temporal_patch
        T0 = math.ceil(T / t)
        if T0 * t != T:
            tokens = F.pad(tokens, (0, 0, 0, 0, 0, 0, 0, T0 * t - T))
        tokens = tokens.unflatten(1, (T0, t)).sum(2)  # [B, T0, h, w, Ce]
        counts = tokens.new_tensor(
            [min(t, T - i * t) for i in range(T0)])  # frames per group
        tokens = tokens / counts.view(1, T0, 1, 1, 1)
        tokens = self.proj(self.norm(tokens))  # [B, T0, h, w, C0]
        return tokens.flatten(1, 3), (T0, h, w)  # [B, T0*h*w, C0]
