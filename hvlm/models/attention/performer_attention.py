"""FAVOR+ attention (Performer): softmax attention in linear time through
positive orthogonal random features."""
from typing import Optional, Tuple

import torch
from torch import Tensor

from hvlm.registry import ATTENTIONS
from .feature_maps import (normalised_linear_attention,
                           orthogonal_gaussian_matrix,
                           positive_random_features, project_heads)
from .full_attention import FullAttention


@ATTENTIONS.register_module()
class PerformerAttention(FullAttention):
    """Softmax attention estimated with FAVOR+ (Choromanski et al.,
    "Rethinking Attention with Performers", ICLR 2021).

    ``exp(q . k / sqrt(d))`` is written as the expectation of
    ``phi(q) . phi(k)`` over random projections (see
    :func:`positive_random_features`); with ``m = nb_features`` samples the
    attention becomes ``D^-1 phi(Q) (phi(K)^T V)``: ``O(N m d)`` time and
    ``O(N m)`` memory instead of ``O(N^2)``. The estimate is unbiased and
    its error shrinks as ``m`` grows; ``m`` of a few ``d log d`` is the
    paper's recommendation.

    The projection is a buffer (saved in checkpoints, so evaluation is
    reproducible). During training it is redrawn every ``redraw_interval``
    forward passes, which the paper found to help training: the model does
    not overfit one draw of features. Redraws use torch's global generator,
    so ranks seeded alike (mmengine's default) draw alike.

    Proportional attention is exact here: a key standing for ``s`` tubelets
    gets its features multiplied by ``s``, which is what ``s`` identical
    keys contribute to both numerator and normaliser.

    ``attn_drop`` has no attention matrix to act on; it drops whole keys
    instead (DropKey, Li et al., CVPR 2023): each key's features are zeroed
    with that probability, per head, before the normalisation, so the kept
    keys' weights are renormalised as in a softmax over the kept keys.

    Parameters are those of :class:`FullAttention` (``qkv``, ``proj``), so a
    checkpoint trained with full attention loads and can be fine-tuned.

    Args:
        embed_dims (int): Channels ``C``.
        num_heads (int): Heads; must divide ``embed_dims``.
        qkv_bias (bool): Bias of the qkv projection.
        attn_drop (float): Probability of dropping a key (DropKey).
        proj_drop (float): Dropout after the output projection.
        nb_features (int): Random features ``m`` per head.
        redraw_interval (int, optional): Redraw the projection every this
            many training forward passes; ``None`` or 0 never redraws.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 nb_features: int = 256,
                 redraw_interval: Optional[int] = 1000) -> None:
        super().__init__(embed_dims, num_heads, qkv_bias, attn_drop,
                         proj_drop)
        if nb_features <= 0:
            raise ValueError(
                f'nb_features={nb_features} must be a positive integer')
        if redraw_interval is not None and redraw_interval < 0:
            raise ValueError(f'redraw_interval={redraw_interval} must be '
                             'None, 0 (never) or a positive integer')
        self.nb_features = nb_features
        self.redraw_interval = redraw_interval or 0
        self.register_buffer(
            'projection',
            orthogonal_gaussian_matrix(nb_features, self.head_dims))
        self.register_buffer(
            'calls_since_redraw', torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def redraw_projection(self) -> None:
        """Draw a new orthogonal random projection in place."""
        self.projection.copy_(
            orthogonal_gaussian_matrix(self.nb_features, self.head_dims))
        self.calls_since_redraw.zero_()

    def _maybe_redraw(self) -> None:
        if not (self.training and self.redraw_interval):
            return
        if int(self.calls_since_redraw) >= self.redraw_interval:
            self.redraw_projection()
        self.calls_since_redraw += 1

    def forward(self,
                x: Tensor,
                *,
                shape: Optional[Tuple[int, int, int]] = None,
                size: Optional[Tensor] = None,
                memory: Optional[Tensor] = None) -> Tensor:
        """Attend.

        Args:
            x (Tensor): Tokens ``[B, N, C]``.
            shape (tuple, optional): ``(T, H, W)``; not needed.
            size (Tensor, optional): ``[B, N]`` tubelets per token.
            memory (Tensor, optional): ``[B, M, C]`` extra keys/values.

        Returns:
            Tensor: ``[B, N, C]``.
        """
        B, N, C = x.shape
        self._maybe_redraw()
        q, k, v, key_size = project_heads(self, x, size, memory)
        # Features go through exp(): bf16/fp16 would round them to 2-3
        # digits, so this part always runs in float32.
        with torch.autocast(device_type=x.device.type, enabled=False):
            q, k, v = q.float(), k.float(), v.float()
            q_feats = positive_random_features(
                q, self.projection, is_query=True)  # [B, h, N, m]
            k_feats = positive_random_features(
                k, self.projection, is_query=False)  # [B, h, M + N, m]
            if key_size is not None:
                k_feats = k_feats * key_size.float()[:, None, :, None]
            if self.training and self.attn_drop > 0:
                keep = torch.rand(
                    k_feats.shape[:-1], device=k_feats.device
                ) >= self.attn_drop  # [B, h, M + N]
                k_feats = k_feats * keep.unsqueeze(-1)
            out = normalised_linear_attention(q_feats, k_feats, v)
        out = out.to(x.dtype).transpose(1, 2).reshape(B, N, C)  # [B, N, C]
        return self.proj_drop(self.proj(out))

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, nb_features={self.nb_features}, '
                f'redraw_interval={self.redraw_interval}')
