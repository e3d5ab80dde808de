"""A linear layer with one low-rank update per domain (LoRA)."""
import math
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from .domain_selection import DomainSelection


class LoRALinear(nn.Linear):
    """``y = W x + b + (alpha / r) * B_d A_d dropout(x)`` for the domain
    ``d`` of each sample (Hu et al., *LoRA: Low-Rank Adaptation of Large
    Language Models*, ICLR 2022, eq. 3).

    It subclasses :class:`torch.nn.Linear` and keeps the wrapped layer's
    ``weight`` and ``bias`` under their own names, so a checkpoint of the
    model without adapters loads into the adapted model unchanged (only
    the ``lora_A`` / ``lora_B`` keys are new) and code that reads
    ``.weight`` directly still sees the base matrix.

    Every domain has its own ``A [r, in]`` and ``B [out, r]`` (separate
    parameters, ``lora_A.<domain>``), so freezing all but one domain and
    saving one domain are per-tensor operations. ``A`` starts like a
    linear layer's weight and ``B`` at zero, so at initialisation the layer
    computes exactly ``W x + b``.

    Which domain applies is read from a :class:`DomainSelection` shared by
    every LoRA layer of a model (set by :class:`LoRAAdapter`):

    - ``None``: base weights only;
    - one domain for the batch: one extra pair of small matmuls;
    - ``ids [B]`` (``-1``: no adapter for that sample): each sample's ``A``
      and ``B`` are gathered into ``[B, r, in]`` / ``[B, out, r]`` and applied
      with batched matmuls;
    - ``weights [B, D]`` (soft or top-k routing): the domains' ``A`` are
      concatenated into one ``[D*r, in]`` matrix, the ``D*r`` hidden units
      are scaled by their sample's domain weight, then one ``[out, D*r]``
      matmul sums the weighted updates.

    ``merge(domain)`` adds that domain's ``(alpha/r) B A`` into ``W`` so that
    inference costs exactly a plain linear layer; ``unmerge()`` restores the
    weight saved at merge time bit for bit.

    Args:
        in_features, out_features (int): Sizes of the base layer.
        domains (Sequence[str]): Names of the adapter sets.
        rank (int): ``r``.
        alpha (float): Scaling numerator; updates are scaled by ``alpha/r``.
        dropout (float): Dropout on the input of the low-rank path.
        selection (DomainSelection, optional): Shared selection; a private
            one when omitted.
        bias (bool): Whether the base layer has a bias.
    """

    def __init__(self,
                 in_features: int,
                 out_features: int,
                 domains: Sequence[str],
                 rank: int = 8,
                 alpha: float = 16.,
                 dropout: float = 0.05,
                 selection: Optional[DomainSelection] = None,
                 bias: bool = True,
                 device=None,
                 dtype=None) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device,
                         dtype=dtype)
        domains = tuple(domains)
        if not domains or len(set(domains)) != len(domains):
            raise ValueError(f'domains={domains} must be a non-empty '
                             'sequence of distinct names')
        if int(rank) != rank or rank < 1:
            raise ValueError(f'rank={rank} must be a positive integer')
        if not 0. <= dropout < 1.:
            raise ValueError(f'dropout={dropout} must be in [0, 1)')
        self.domains = domains
        self.rank = int(rank)
        self.alpha = float(alpha)
        self.scaling = self.alpha / self.rank
        self.selection = selection if selection is not None else \
            DomainSelection(domains)
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else \
            nn.Identity()
        factory = dict(device=device, dtype=dtype)
        self.lora_A = nn.ParameterDict({
            d: nn.Parameter(torch.empty(self.rank, in_features, **factory))
            for d in domains
        })
        self.lora_B = nn.ParameterDict({
            d: nn.Parameter(torch.zeros(out_features, self.rank, **factory))
            for d in domains
        })
        self.merged_domain: Optional[str] = None
        self._unmerged_weight: Optional[Tensor] = None
        self.reset_lora_parameters()

    @classmethod
    def from_linear(cls, linear: nn.Linear, domains: Sequence[str],
                    **kwargs) -> 'LoRALinear':
        """Wrap ``linear``: its ``weight`` and ``bias`` parameters are
        reused (not copied), so optimizers and tied weights stay valid."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f'expected an nn.Linear, got {type(linear)}')
        w = linear.weight
        layer = cls(linear.in_features, linear.out_features, domains,
                    bias=linear.bias is not None, device=w.device,
                    dtype=w.dtype, **kwargs)
        layer.weight = linear.weight
        layer.bias = linear.bias
        layer.train(linear.training)
        return layer

    def reset_lora_parameters(self) -> None:
        """``A`` like :class:`nn.Linear`'s default weight init, ``B = 0``."""
        for d in self.domains:
            nn.init.kaiming_uniform_(self.lora_A[d], a=math.sqrt(5))
            nn.init.zeros_(self.lora_B[d])

    def reset_parameters(self) -> None:
        # nn.Linear.__init__ calls this before the LoRA factors exist.
        super().reset_parameters()
        if hasattr(self, 'lora_A'):
            self.reset_lora_parameters()

    def delta_weight(self, domain: str) -> Tensor:
        """``(alpha/r) B A`` of ``domain``: ``[out, in]``."""
        self._check_domain(domain)
        return (self.lora_B[domain] @ self.lora_A[domain]) * self.scaling

    # ------------------------------------------------------------------
    # merge / unmerge
    # ------------------------------------------------------------------
    @torch.no_grad()
    def merge(self, domain: str) -> None:
        """Fold ``domain``'s update into ``weight`` (``W <- W + s B A``)."""
        self._check_domain(domain)
        if self.merged_domain is not None:
            raise RuntimeError(
                f'domain {self.merged_domain!r} is already merged; call '
                f'unmerge() before merging {domain!r}')
        self._unmerged_weight = self.weight.detach().clone()
        self.weight.add_(self.delta_weight(domain).to(self.weight.dtype))
        self.merged_domain = domain

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore the base weight exactly as it was before :meth:`merge`."""
        if self.merged_domain is None:
            return
        self.weight.copy_(self._unmerged_weight)
        self._unmerged_weight = None
        self.merged_domain = None

    # ------------------------------------------------------------------
    # forward
    # ------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        """``x [B, ..., in]`` -> ``[B, ..., out]``."""
        out = F.linear(x, self.weight, self.bias)
        sel = self.selection
        if self.merged_domain is not None:
            if sel.domain != self.merged_domain:
                raise RuntimeError(
                    f'{self.merged_domain!r} is merged into the weights but '
                    f'the selection is {sel.describe()}; unmerge() first or '
                    f'select {self.merged_domain!r} for the whole batch')
            return out
        if sel.is_empty:
            return out
        h = self.lora_dropout(x)
        if sel.domain is not None:
            d = sel.domain
            h = F.linear(h, self.lora_A[d])  # [B, ..., r]
            # out += s * h B^T in one fused, in-place matmul (F.linear's
            # backward does not need its output, so this is autograd-safe)
            flat = out.view(-1, self.out_features)  # [B*..., out]
            # (in-place ops are not autocast: match out's dtype by hand)
            flat.addmm_(h.reshape(-1, self.rank).to(out.dtype),
                        self.lora_B[d].t().to(out.dtype), alpha=self.scaling)
            return out
        if sel.ids is not None:
            return out + self._per_sample(h, sel.ids)
        return out + self._blended(h, sel.weights)

    def _per_sample(self, x: Tensor, ids: Tensor) -> Tensor:
        """Each sample's own domain; ``ids [B]``, -1 = none."""
        B = x.shape[0]
        if ids.shape != (B, ):
            raise ValueError(f'domain ids have shape {tuple(ids.shape)}, '
                             f'expected [{B}] (one per sample)')
        A = torch.stack([self.lora_A[d] for d in self.domains])  # [D, r, in]
        Bm = torch.stack([self.lora_B[d] for d in self.domains])  # [D, out, r]
        valid = ids >= 0  # [B]
        safe = ids.clamp(min=0)
        flat = x.reshape(B, -1, x.shape[-1])  # [B, L, in]
        h = torch.bmm(flat, A[safe].transpose(1, 2))  # [B, L, r]
        y = torch.bmm(h, Bm[safe].transpose(1, 2))  # [B, L, out]
        y = y * (valid.to(y.dtype) * self.scaling)[:, None, None]
        return y.reshape(*x.shape[:-1], y.shape[-1])  # [B, ..., out]

    def _blended(self, x: Tensor, weights: Tensor) -> Tensor:
        """``sum_d w[b, d] (alpha/r) B_d A_d x``; ``weights [B, D]``."""
        B, D = x.shape[0], len(self.domains)
        if weights.shape != (B, D):
            raise ValueError(f'domain weights have shape '
                             f'{tuple(weights.shape)}, expected [B, D] = '
                             f'[{B}, {D}]')
        A = torch.cat([self.lora_A[d] for d in self.domains])  # [D*r, in]
        Bm = torch.cat([self.lora_B[d] for d in self.domains],
                       dim=1)  # [out, D*r]
        flat = x.reshape(B, -1, x.shape[-1])  # [B, L, in]
        h = F.linear(flat, A)  # [B, L, D*r]
        w = weights.to(h.dtype).repeat_interleave(self.rank, dim=1)  # [B, D*r]
        y = F.linear(h * w[:, None, :], Bm) * self.scaling  # [B, L, out]
        return y.reshape(*x.shape[:-1], y.shape[-1])  # [B, ..., out]

    def _check_domain(self, domain: str) -> None:
        if domain not in self.domains:
            raise KeyError(f'unknown domain {domain!r}; this LoRA layer has '
                           f'{self.domains}')

    def lora_state_dict(self, domain: str) -> Dict[str, Tensor]:
        """``{'lora_A': A, 'lora_B': B}`` of one domain (detached)."""
        self._check_domain(domain)
        return dict(lora_A=self.lora_A[domain].detach(),
                    lora_B=self.lora_B[domain].detach())

    def extra_repr(self) -> str:
        return (f'{super().extra_repr()}, rank={self.rank}, '
                f'alpha={self.alpha:g}, domains={self.domains}'
                + (f', merged={self.merged_domain!r}'
                   if self.merged_domain else ''))

