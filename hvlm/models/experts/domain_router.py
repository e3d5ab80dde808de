"""Route each video to a domain (or a blend of domains) from its features."""
from typing import Dict, NamedTuple, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from hvlm.registry import MODELS

MODES = ('soft', 'hard', 'topk')


class Routing(NamedTuple):
    """A routing decision for ``B`` videos over ``D`` domains.

    ``logits``: ``[B, D]`` router scores (``None`` when the domain was
    forced); ``weights``: ``[B, D]`` how much each domain counts (rows sum
    to 1); ``ids``: ``[B]`` the chosen domain when the decision is hard,
    else ``None``.
    """
    logits: Optional[Tensor]
    weights: Tensor
    ids: Optional[Tensor]


@MODELS.register_module()
class DomainRouter(BaseModule):
    """A confidence-based domain classifier over pooled video features.

    ``LayerNorm -> Linear -> GELU -> Linear`` maps a pooled feature ``[B, C]``
    to domain logits; the softmax (at ``temperature``) is the router's
    confidence in each domain, and ``mode`` turns it into weights:

    - ``'soft'``: every domain weighted by its probability (blending);
    - ``'hard'``: the argmax domain only (one-hot);
    - ``'topk'``: the ``top_k`` most probable domains, renormalised, as in
      sparsely-gated mixtures of experts (Shazeer et al., ICLR 2017).

    ``force_domain`` skips the classifier: every video goes to that domain
    (the user names it, or a merged adapter needs one domain).

    Training (:meth:`loss`): cross-entropy against the metadata's domain for
    the videos whose domain is known (``-1`` elsewhere is ignored) plus the
    load-balancing term of Switch Transformers (Fedus et al., JMLR 2022,
    eq. 4): ``D * sum_d f_d * P_d`` with ``f_d`` the fraction of videos whose
    argmax is ``d`` and ``P_d`` the mean probability of ``d``; it is 1 when
    routing is uniform and grows as it collapses onto few domains.

    Args:
        in_channels (int): Channels ``C`` of the pooled feature.
        domains (Sequence[str]): Domain names, in the order of the logits.
        mode (str): ``'soft'``, ``'hard'`` or ``'topk'``.
        top_k (int): Domains kept by ``'topk'``.
        hidden_channels (int): Width of the hidden layer.
        temperature (float): Softmax temperature of the weights.
        loss_weight (float): Weight of the cross-entropy term.
        balance_weight (float): Weight of the load-balancing term.
        force_domain (str, optional): Route every video to this domain.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 domains: Sequence[str] = ('general', 'sports', 'tutorials',
                                           'news'),
                 mode: str = 'soft',
                 top_k: int = 2,
                 hidden_channels: int = 64,
                 temperature: float = 1.0,
                 loss_weight: float = 0.1,
                 balance_weight: float = 0.01,
                 force_domain: Optional[str] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.domains = tuple(domains)
        if len(self.domains) < 1 or len(set(self.domains)) != len(
                self.domains):
            raise ValueError(f'domains={domains} must be distinct names')
        if mode not in MODES:
            raise ValueError(f'mode={mode!r} is not one of {MODES}')
        if mode == 'topk' and not 1 <= top_k <= len(self.domains):
            raise ValueError(f'top_k={top_k} must be in [1, '
                             f'{len(self.domains)}] (the number of domains)')
        if temperature <= 0:
            raise ValueError(f'temperature={temperature} must be > 0')
        if force_domain is not None and force_domain not in self.domains:
            raise ValueError(f'force_domain={force_domain!r} is not among '
                             f'domains={self.domains}')
        self.mode, self.top_k, self.temperature = mode, top_k, temperature
        self.loss_weight, self.balance_weight = loss_weight, balance_weight
        self.force_domain = force_domain
        self.classifier = nn.Sequential(
            nn.LayerNorm(in_channels), nn.Linear(in_channels,
                                                 hidden_channels), nn.GELU(),
            nn.Linear(hidden_channels, len(self.domains)))

    @property
    def num_domains(self) -> int:
        return len(self.domains)

    def forward(self, pooled: Tensor) -> Routing:
        """``pooled [B, C]`` -> :class:`Routing`."""
        if pooled.dim() != 2:
            raise ValueError(f'pooled features must be [B, C], got '
                             f'{tuple(pooled.shape)}')
        B, D = pooled.shape[0], self.num_domains
        if self.force_domain is not None:
            ids = pooled.new_full((B, ), self.domains.index(
                self.force_domain), dtype=torch.long)  # [B]
            return Routing(None, F.one_hot(ids, D).to(pooled.dtype), ids)
        logits = self.classifier(pooled)  # [B, D]
        probs = (logits / self.temperature).softmax(-1)  # [B, D]
        if self.mode == 'soft':
            return Routing(logits, probs, None)
        if self.mode == 'hard':
            ids = probs.argmax(-1)  # [B]
            return Routing(logits, F.one_hot(ids, D).to(probs.dtype), ids)
        top, idx = probs.topk(self.top_k, dim=-1)  # [B, k]
        weights = torch.zeros_like(probs).scatter(
            -1, idx, top / top.sum(-1, keepdim=True))  # [B, D]
        return Routing(logits, weights, idx[:, 0] if self.top_k == 1 else
                       None)

    def loss(self, routing: Routing, gt_ids: Tensor) -> Dict[str, Tensor]:
        """Cross-entropy on known domains (``gt_ids [B]``, ``-1``: unknown)
        and the load-balancing term; a forced router has no loss."""
        if routing.logits is None:
            return {}
        logits = routing.logits  # [B, D]
        if gt_ids.shape != logits.shape[:1]:
            raise ValueError(f'gt domain ids have shape '
                             f'{tuple(gt_ids.shape)}, expected '
                             f'[{logits.shape[0]}]')
        known = gt_ids >= 0
        if known.any():
            ce = F.cross_entropy(logits[known], gt_ids[known])
        else:
            ce = logits.sum() * 0.
        losses = dict(loss_router_cls=ce * self.loss_weight)
        if self.balance_weight > 0:
            losses['loss_router_balance'] = self.balance_weight * \
                load_balancing_loss(logits.softmax(-1))
        with torch.no_grad():
            if known.any():
                losses['router_acc'] = (logits[known].argmax(-1) ==
                                        gt_ids[known]).float().mean()
        return losses


def load_balancing_loss(probs: Tensor) -> Tensor:
    """``D * sum_d f_d * P_d`` of Switch Transformers for ``probs [B, D]``;
    ``f_d`` (argmax fractions) carries no gradient, ``P_d`` does."""
    B, D = probs.shape
    frac = F.one_hot(probs.argmax(-1), D).to(probs.dtype).mean(0)  # [D]
    return D * (frac * probs.mean(0)).sum()
