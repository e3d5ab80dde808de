"""A pre-norm transformer block whose attention comes from ``ATTENTIONS``."""
from typing import Optional, Tuple

import torch.nn as nn
from mmcv.cnn.bricks.drop import DropPath
from torch import Tensor

from hvlm.registry import ATTENTIONS
from .mlp import Mlp


class TransformerBlock(nn.Module):
    """``x + DropPath(Attn(LN(x)))`` then ``x + DropPath(MLP(LN(x)))``.

    The attention is built from ``attention_cfg`` with ``embed_dims`` and
    ``num_heads`` filled in; that is all a third-party attention must accept.
    ``qkv_bias``, ``attn_drop`` and ``proj_drop`` are forwarded only when
    they differ from their usual defaults (or the config sets them), so a
    minimal attention works with the default encoder settings and a
    mismatch fails loudly instead of being silently ignored.

    Args:
        embed_dims (int): Channels ``C``.
        num_heads (int): Attention heads.
        mlp_ratio (float): Hidden width of the MLP relative to ``C``.
        qkv_bias (bool): Bias of the query/key/value projection.
        drop (float): Dropout after projections.
        attn_drop (float): Dropout on attention weights.
        drop_path (float): Stochastic depth rate of this block.
        attention_cfg (dict): Config of the attention, e.g.
            ``dict(type='FullAttention')``.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 mlp_ratio: float = 4.0,
                 qkv_bias: bool = True,
                 drop: float = 0.,
                 attn_drop: float = 0.,
                 drop_path: float = 0.,
                 attention_cfg: Optional[dict] = None) -> None:
        super().__init__()
        cfg = dict(attention_cfg or dict(type='FullAttention'))
        for key, value, default in (('qkv_bias', qkv_bias, True),
                                    ('attn_drop', attn_drop, 0.),
                                    ('proj_drop', drop, 0.)):
            if value != default:
                cfg.setdefault(key, value)
        cfg.update(embed_dims=embed_dims, num_heads=num_heads)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = ATTENTIONS.build(cfg)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else \
            nn.Identity()
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = Mlp(embed_dims, int(embed_dims * mlp_ratio), drop)

    def forward(self,
                x: Tensor,
                shape: Optional[Tuple[int, int, int]] = None,
                size: Optional[Tensor] = None) -> Tensor:
        """``x [B, N, C]`` on grid ``shape`` with token sizes ``size``
        ``[B, N]`` (``None``: all ones) -> ``[B, N, C]``."""
        x = x + self.drop_path(self.attn(self.norm1(x), shape=shape,
                                         size=size))
        return x + self.drop_path(self.mlp(self.norm2(x)))
