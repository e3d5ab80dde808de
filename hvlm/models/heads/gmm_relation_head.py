"""Gaussian-mixture relation heads with aleatoric and epistemic uncertainty
(TEMPURA's predicate classifier).

After Nag et al., "Unbiased Scene Graph Generation in Videos" (CVPR 2023),
whose heads follow the mixture-density classifier of Choi et al. (ICCV
2019). Per pair and relation group, ``K`` components each give a mean
logit vector ``mu_k [C]``, a variance ``var_k [C]`` (softplus) and a mixing
weight ``pi_k`` (softmax over components). For each class ``c``:

- aleatoric uncertainty  ``sum_k pi_k var_kc`` (noise the data carries),
- epistemic uncertainty  ``sum_k pi_k (mu_kc - sum_j pi_j mu_jc)^2`` (how
  much the components disagree).

Training loss of a group: the mixture of the components' losses on
reparameterised logits, ``sum_k pi_k CE(mu_k + sqrt(var_k) * eps)`` with
``eps ~ N(0, 1)`` (softmax cross-entropy for attention, binary
cross-entropy for the multi-label groups), so a component with large
variance attenuates its pair's loss. Two hvlm choices where the paper
leaves the form open: ``gmm_regularization`` weighs the KL divergence of
each component's noise ``N(0, var)`` to ``N(0, 1)`` (keeps variances from
collapsing to zero or growing without bound); ``uncertainty_threshold``
down-weighs pairs whose normalised uncertainty ``u = U / (1 + U)`` (``U``
the group's mean aleatoric plus epistemic uncertainty) exceeds it, linearly
to zero at ``u = 1`` (:func:`uncertainty_weights`). Prediction: the
mixture of the components' probabilities at their means.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import HEADS

GROUPS = ('attention', 'spatial', 'contacting')


def mixture_uncertainty(pi: Tensor, mu: Tensor,
                        var: Tensor) -> Tuple[Tensor, Tensor]:
    """Aleatoric and epistemic uncertainty of a Gaussian mixture.

    Args:
        pi (Tensor): Mixing weights ``[P, K]`` (rows sum to 1).
        mu (Tensor): Component means ``[P, K, C]``.
        var (Tensor): Component variances ``[P, K, C]``.

    Returns:
        tuple: aleatoric ``[P, C]`` and epistemic ``[P, C]``.
    """
    w = pi[..., None]  # [P, K, 1]
    aleatoric = (w * var).sum(1)
    mean = (w * mu).sum(1, keepdim=True)  # [P, 1, C]
    epistemic = (w * (mu - mean).pow(2)).sum(1)
    return aleatoric, epistemic


def uncertainty_weights(uncertainty: Tensor, threshold: float) -> Tensor:
    """Per-pair loss weights from a non-negative uncertainty ``[P]``.

    ``u = U / (1 + U)`` maps it into ``[0, 1)``; pairs with ``u <=
    threshold`` keep weight 1, the others get ``(1 - u) / (1 - threshold)``.
    The weights carry no gradient.
    """
    u = (uncertainty / (1 + uncertainty)).detach()
    if threshold >= 1:
        return torch.ones_like(u)
    return torch.where(u <= threshold, torch.ones_like(u),
                       (1 - u) / (1 - threshold))


def mixture_loss(pi: Tensor, mu: Tensor, var: Tensor, target: Tensor,
                 multi_label: bool, eps: Optional[Tensor] = None) -> Tensor:
    """Per-pair loss ``[P]``: ``sum_k pi_k loss(mu_k + sqrt(var_k) eps_k)``.

    Args:
        pi, mu, var (Tensor): ``[P, K]``, ``[P, K, C]``, ``[P, K, C]``.
        target (Tensor): class indices ``[P]`` (single-label) or multi-hot
            ``[P, C]``.
        multi_label (bool): Binary cross-entropy averaged over classes
            instead of softmax cross-entropy.
        eps (Tensor, optional): Noise ``[P, K, C]``; ``None`` uses the means.
    """
    logits = mu if eps is None else mu + var.sqrt() * eps
    P, K, C = logits.shape
    if multi_label:
        t = target.to(logits.dtype)[:, None].expand(P, K, C)
        per = F.binary_cross_entropy_with_logits(
            logits, t, reduction='none').mean(-1)  # [P, K]
    else:
        per = F.cross_entropy(
            logits.reshape(P * K, C),
            target.long()[:, None].expand(P, K).reshape(-1),
            reduction='none').view(P, K)
    return (pi * per).sum(1)


def variance_kl(pi: Tensor, var: Tensor) -> Tensor:
    """``[P]``: ``sum_k pi_k mean_c KL(N(0, var_kc) || N(0, 1))``."""
    kl = 0.5 * (var - var.log() - 1)  # [P, K, C]
    return (pi * kl.mean(-1)).sum(1)


class _MixtureGroup(nn.Module):
    """One relation group: ``x [P, D]`` -> ``pi [P, K]``, ``mu``, ``var``
    ``[P, K, C]``."""

    def __init__(self, in_channels: int, num_classes: int,
                 num_mixtures: int, min_variance: float) -> None:
        super().__init__()
        self.K, self.C = num_mixtures, num_classes
        self.min_variance = min_variance
        self.mean = nn.Linear(in_channels, num_mixtures * num_classes)
        self.variance = nn.Linear(in_channels, num_mixtures * num_classes)
        self.mixing = nn.Linear(in_channels, num_mixtures)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        P = len(x)
        mu = self.mean(x).view(P, self.K, self.C)
        var = F.softplus(self.variance(x)).view(P, self.K, self.C) + \
            self.min_variance
        return self.mixing(x).softmax(-1), mu, var


@HEADS.register_module()
class GMMRelationHead(nn.Module):
    """Attention (single-label) and spatial / contacting (multi-label)
    predicates as Gaussian mixtures (see the module doc).

    Same interface as :class:`RelationHead` (``loss``, ``predict``), plus
    :meth:`uncertainty`.

    Args:
        in_channels (int): Pair feature width.
        num_mixtures (int): Components ``K`` per group.
        uncertainty_threshold (float): In ``[0, 1]``; pairs above it are
            down-weighed in the loss (1 turns the weighting off).
        gmm_regularization (float): Weight of the variance KL term.
        num_attention, num_spatial, num_contacting (int): Group sizes.
        min_variance (float): Floor added to every variance.
    """

    def __init__(self,
                 in_channels: int,
                 num_mixtures: int = 4,
                 uncertainty_threshold: float = 0.5,
                 gmm_regularization: float = 0.01,
                 num_attention: int = 3,
                 num_spatial: int = 6,
                 num_contacting: int = 17,
                 min_variance: float = 1e-4) -> None:
        super().__init__()
        if num_mixtures < 1:
            raise ValueError(f'GMMRelationHead: num_mixtures={num_mixtures} '
                             'must be >= 1')
        if not 0 <= uncertainty_threshold <= 1:
            raise ValueError('GMMRelationHead: uncertainty_threshold='
                             f'{uncertainty_threshold} must be in [0, 1]')
        if gmm_regularization < 0:
            raise ValueError('GMMRelationHead: gmm_regularization='
                             f'{gmm_regularization} must be >= 0')
        self.uncertainty_threshold = uncertainty_threshold
        self.gmm_regularization = gmm_regularization
        sizes = (num_attention, num_spatial, num_contacting)
        self.groups = nn.ModuleDict({
            g: _MixtureGroup(in_channels, c, num_mixtures, min_variance)
            for g, c in zip(GROUPS, sizes)
        })

    def forward(self, x: Tensor) -> Dict[str, Tuple[Tensor, Tensor, Tensor]]:
        """``x [P, D]`` -> per group ``(pi [P, K], mu [P, K, C], var)``."""
        return {g: head(x) for g, head in self.groups.items()}

    def uncertainty(self, x: Tensor) -> Dict[str, Tuple[Tensor, Tensor]]:
        """Per group, aleatoric and epistemic uncertainty ``[P, C]``."""
        return {g: mixture_uncertainty(*p) for g, p in self(x).items()}

    def loss(self, x: Tensor, attention: Tensor, spatial: Tensor,
             contacting: Tensor) -> Dict[str, Tensor]:
        """Uncertainty-weighted mixture losses, each a mean over pairs,
        and ``loss_gmm_reg``."""
        targets = dict(attention=attention, spatial=spatial,
                       contacting=contacting)
        losses = {}
        reg = x.new_zeros(())
        for g, (pi, mu, var) in self(x).items():
            eps = torch.randn_like(mu) if self.training else None
            per = mixture_loss(pi, mu, var, targets[g], g != 'attention',
                               eps)
            al, ep = mixture_uncertainty(pi, mu, var)
            w = uncertainty_weights((al + ep).mean(1),
                                    self.uncertainty_threshold)
            losses[f'loss_{g}'] = (w * per).mean()
            reg = reg + variance_kl(pi, var).mean()
        losses['loss_gmm_reg'] = self.gmm_regularization * reg
        return losses

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Mixture probabilities: ``sum_k pi_k softmax(mu_k)`` for attention
        and ``sum_k pi_k sigmoid(mu_k)`` for spatial / contacting."""
        out = []
        for g, (pi, mu, _) in self(x).items():
            p = mu.softmax(-1) if g == 'attention' else mu.sigmoid()
            out.append((pi[..., None] * p).sum(1))
        return tuple(out)
