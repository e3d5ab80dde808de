"""TEMPURA: STTran with uncertainty-aware mixture heads and a predicate
prototype memory, against the long tail of predicates.

After Nag et al., "Unbiased Scene Graph Generation in Videos" (CVPR 2023).
On top of :class:`STTran`'s pair features, spatial encoder and temporal
decoder:

- **Gaussian-mixture relation heads** (:class:`GMMRelationHead`): per
  group ``num_mixtures`` components, aleatoric and epistemic uncertainty,
  uncertainty-weighted losses (``uncertainty_threshold``) and a variance
  regulariser (``gmm_regularization``).
- **Predicate prototype memory**: a buffer ``[26, D]`` of one prototype per
  predicate, the uncertainty-weighted mean of the (contextualised) features
  of the training pairs that carry it. TEMPURA weighs each pair by its
  uncertainty so that the hard pairs, mostly of tail predicates, shape the
  prototypes. The reference recomputes the memory from per-video feature
  files after each epoch; here it is updated in memory after every training
  step by an exponential moving average (:func:`update_prototypes`), is a
  model buffer, and so lives in the checkpoint and is broadcast by DDP.
- **Memory diffusion**: each pair feature attends over the prototypes
  (and a null slot) and adds ``memory_lambda`` times what it reads, so a
  pair of a rare predicate is pulled toward what that predicate looks like
  across the training set.

Not built: TEMPURA's object-sequence transformer for object classification
in SGCLS/SGDET (the object classifier here is STTran's).
"""
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from torch import Tensor

from hvlm.registry import MODELS
from .sttran import STTran

NUM_PREDICATES = 26
WEIGHTINGS = ('simple', 'aleatoric', 'epistemic', 'both')


def update_prototypes(memory: Tensor, filled: Tensor, feats: Tensor,
                      labels: Tensor, weights: Tensor,
                      momentum: float) -> None:
    """Moving-average update of predicate prototypes, in place.

    For every predicate ``c`` carried by at least one pair of the batch, the
    batch prototype is ``sum_i w_ic y_ic f_i / sum_i w_ic y_ic``; an empty
    slot takes it as is, a filled one moves ``momentum`` of the way to it.

    Args:
        memory (Tensor): Prototypes ``[C, D]``.
        filled (Tensor): ``[C]`` bool, which slots hold a prototype.
        feats (Tensor): Pair features ``[P, D]``.
        labels (Tensor): Multi-hot predicates ``[P, C]``.
        weights (Tensor): Non-negative ``[P, C]`` pair-and-predicate weights.
        momentum (float): In ``(0, 1]``.
    """
    w = labels.to(feats.dtype) * weights.to(feats.dtype)  # [P, C]
    total = w.sum(0)  # [C]
    present = labels.any(0) & (total > 0)
    if not present.any():
        return
    batch = (w.t() @ feats) / total.clamp(min=1e-12)[:, None]  # [C, D]
    rate = torch.where(filled, torch.full_like(total, momentum),
                       torch.ones_like(total))[:, None]
    new = memory + rate * (batch - memory)
    memory.copy_(torch.where(present[:, None], new, memory))
    filled |= present


@MODELS.register_module()
class TEMPURA(STTran):
    """STTran + mixture heads + predicate memory (see the module doc).

    Args:
        num_mixtures (int): Mixture components per relation group.
        uncertainty_threshold (float): Loss down-weighting threshold.
        gmm_regularization (float): Weight of the variance regulariser.
        memory_lambda (float): Weight of what a pair reads from the memory
            (TEMPURA: 0.3-0.5).
        memory_momentum (float): Moving-average rate of the prototypes.
        memory_weighting (str): How pairs are weighed into a prototype:
            ``'simple'`` (plain mean), ``'aleatoric'``, ``'epistemic'`` or
            ``'both'`` (their sum, the default) uncertainty of the
            predicate.
        relation_head (dict, optional): Defaults to ``GMMRelationHead``;
            ``num_mixtures``, ``uncertainty_threshold`` and
            ``gmm_regularization`` are filled in.
        **kwargs: :class:`STTran` arguments.
    """

    def __init__(self,
                 num_mixtures: int = 4,
                 uncertainty_threshold: float = 0.5,
                 gmm_regularization: float = 0.01,
                 memory_lambda: float = 0.5,
                 memory_momentum: float = 0.1,
                 memory_weighting: str = 'both',
                 relation_head: Optional[dict] = None,
                 **kwargs) -> None:
        if memory_weighting not in WEIGHTINGS:
            raise ValueError(f'TEMPURA: memory_weighting={memory_weighting!r}'
                             f' must be one of {WEIGHTINGS}')
        if not 0 < memory_momentum <= 1:
            raise ValueError(f'TEMPURA: memory_momentum={memory_momentum} '
                             'must be in (0, 1]')
        head = dict(relation_head or dict(type='GMMRelationHead'))
        head.update(num_mixtures=num_mixtures,
                    uncertainty_threshold=uncertainty_threshold,
                    gmm_regularization=gmm_regularization)
        super().__init__(relation_head=head, **kwargs)
        D = self.frame_embed.embedding_dim
        self.memory_lambda = memory_lambda
        self.memory_momentum = memory_momentum
        self.memory_weighting = memory_weighting
        self.register_buffer('prototypes', torch.zeros(NUM_PREDICATES, D))
        self.register_buffer('prototype_filled',
                             torch.zeros(NUM_PREDICATES, dtype=torch.bool))
        self.memory_query = nn.Linear(D, D)
        self.memory_key = nn.Linear(D, D)
        self.memory_value = nn.Linear(D, D)

    def read_memory(self, x: Tensor) -> Tensor:
        """What pairs ``x [P, D]`` read from the filled prototypes
        (``[P, D]``).

        Beside the prototypes sits a null slot (a zero vector), so that a
        pair can read nothing new, the read is defined while the memory is
        empty, and every memory parameter takes part in every step (DDP
        without ``find_unused_parameters``).
        """
        mem = torch.cat([x.new_zeros(1, x.shape[1]),
                         self.prototypes[self.prototype_filled]])  # [1+M, D]
        q = self.memory_query(x)
        k = self.memory_key(mem)
        attn = (q @ k.t() / q.shape[-1]**0.5).softmax(-1)  # [P, M]
        return attn @ self.memory_value(mem)

    def _contextualise(self, x: Tensor, g: Dict) -> Tensor:
        x = super()._contextualise(x, g)
        g['context'] = x  # what the prototypes are made of
        return x + self.memory_lambda * self.read_memory(x)

    def _memory_weights(self, x: Tensor) -> Tensor:
        """``[P, 26]`` weight of each pair in each predicate's prototype."""
        if self.memory_weighting == 'simple':
            return x.new_ones(len(x), NUM_PREDICATES)
        parts = []
        for al, ep in self.relation_head.uncertainty(x).values():
            parts.append({'aleatoric': al, 'epistemic': ep,
                          'both': al + ep}[self.memory_weighting])
        return torch.cat(parts, 1)

    def _loss(self, x, obj_logits, g, samples) -> Dict[str, Tensor]:
        losses = super()._loss(x, obj_logits, g, samples)
        if self.training:
            with torch.no_grad():
                # the layout's pair targets (SGDET: of the assigned pairs)
                labels = torch.cat([
                    nn.functional.one_hot(g['attention'], 3),
                    g['spatial'].long(), g['contacting'].long()
                ], 1).bool()  # [P, 26]
                update_prototypes(self.prototypes, self.prototype_filled,
                                  g['context'].detach(), labels,
                                  self._memory_weights(x),
                                  self.memory_momentum)
        return losses

    @torch.no_grad()
    def _predict(self, x, obj_logits, g, samples) -> List[dict]:
        """STTran's outputs plus ``pred_uncertainty`` ``[M, 26]`` per video:
        each predicate's aleatoric + epistemic uncertainty."""
        out = super()._predict(x, obj_logits, g, samples)
        unc = torch.cat([al + ep for al, ep in
                         self.relation_head.uncertainty(x).values()], 1)
        for v, o in enumerate(out):
            pairs = torch.nonzero(g['pair_video'] == v).flatten()
            o['pred_uncertainty'] = unc[pairs].cpu()
        return out
