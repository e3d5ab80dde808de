"""One small feed-forward expert per domain on top of the shared encoder."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor

from hvlm.registry import MODELS


@MODELS.register_module()
class DomainExperts(BaseModule):
    """``x + sum_d w[b, d] * FFN_d(LN(x))`` on the encoder's output tokens.

    The domain-specialised counterpart of LoRA inside the encoder: where
    LoRA changes the shared weights a little per domain, an expert adds a
    per-domain residual transformation after them (a mixture of experts
    whose gate is the :class:`DomainRouter`, Shazeer et al., ICLR 2017).
    Both can be used together.

    Dispatch loops over *domains*, never over samples: each expert runs once
    on the rows of the videos that give it a non-zero weight, so hard and
    top-k routing cost one or ``k`` experts per video, not ``D``.
    The last linear of each expert starts at zero, so the module starts as
    the identity and does not disturb a pretrained encoder.

    Args:
        in_channels (int): Channels ``C`` of the tokens.
        domains (Sequence[str]): One expert per name.
        hidden_ratio (float): Hidden width of each expert relative to ``C``.
        dropout (float): Dropout inside the experts.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 domains: Sequence[str] = ('general', 'sports', 'tutorials',
                                           'news'),
                 hidden_ratio: float = 1.0,
                 dropout: float = 0.,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.domains = tuple(domains)
        if not self.domains or len(set(self.domains)) != len(self.domains):
            raise ValueError(f'domains={domains} must be distinct names')
        hidden = int(in_channels * hidden_ratio)
        if hidden < 1:
            raise ValueError(f'hidden_ratio={hidden_ratio} gives no hidden '
                             f'channels for in_channels={in_channels}')
        self.in_channels = in_channels
        self.experts = nn.ModuleDict({
            d: nn.Sequential(
                nn.LayerNorm(in_channels), nn.Linear(in_channels, hidden),
                nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden,
                                                          in_channels))
            for d in self.domains
        })
        for expert in self.experts.values():
            nn.init.zeros_(expert[-1].weight)
            nn.init.zeros_(expert[-1].bias)

    def init_weights(self) -> None:
        super().init_weights()
        if self.init_cfg is None:
            for expert in self.experts.values():
                nn.init.zeros_(expert[-1].weight)
                nn.init.zeros_(expert[-1].bias)

    def forward(self, x: Tensor, weights: Optional[Tensor]) -> Tensor:
        """Mix the experts.

        Args:
            x (Tensor): Tokens ``[B, N, C]``.
            weights (Tensor, optional): ``[B, D]`` domain weights (one-hot
                for hard routing, all-zero rows for videos without a
                domain); ``None`` returns ``x``.

        Returns:
            Tensor: ``[B, N, C]``.
        """
        if weights is None:
            return x
        B, D = x.shape[0], len(self.domains)
        if weights.shape != (B, D):
            raise ValueError(f'weights have shape {tuple(weights.shape)}, '
                             f'expected [B, D] = [{B}, {D}] (domains '
                             f'{self.domains})')
        out = x
        for d, name in enumerate(self.domains):
            rows = torch.nonzero(weights[:, d] != 0).flatten()  # [B_d]
            if rows.numel() == 0:
                continue
            y = self.experts[name](x[rows])  # [B_d, N, C]
            w = weights[rows, d].to(y.dtype)[:, None, None]  # [B_d, 1, 1]
            out = out.index_add(0, rows, (y * w).to(out.dtype))  # [B, N, C]
        return out
