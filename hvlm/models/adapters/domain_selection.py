"""Which domain's adapters apply to the current batch."""
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

DomainSpec = Union[None, str, int, Sequence[Union[str, int]], Tensor]


class DomainSelection:
    """The routing decision shared by every LoRA layer of one model.

    One object is set once per forward pass by :class:`LoRAAdapter` and read
    by all of its :class:`LoRALinear` layers, so the decision does not have
    to be threaded through every block's ``forward`` signature. It is *not*
    cleared after the forward pass: activation checkpointing recomputes
    blocks during the backward pass and must see the same decision.

    Exactly one of these is set (or none: base weights only):

    - ``domain`` (str): one domain for the whole batch;
    - ``ids`` (``LongTensor [B]``): a domain index per sample, ``-1`` for a
      sample that uses the base weights;
    - ``weights`` (``FloatTensor [B, D]``): a blend of domains per sample
      (soft or top-k routing).

    Args:
        domains (Sequence[str]): Domain names; indices refer to this order.
    """

    def __init__(self, domains: Sequence[str]) -> None:
        self.domains = tuple(domains)
        self.domain: Optional[str] = None
        self.ids: Optional[Tensor] = None
        self.weights: Optional[Tensor] = None

    @property
    def is_empty(self) -> bool:
        return self.domain is None and self.ids is None and \
            self.weights is None

    def clear(self) -> None:
        self.domain = self.ids = self.weights = None

    def set(self, spec: DomainSpec) -> None:
        """Select from a name, an index, a per-sample sequence of names or
        indices, ``ids [B]`` or ``weights [B, D]``; ``None`` clears.

        A per-sample selection whose samples all agree collapses to the
        one-domain form, which is cheaper to run and is what a merged
        adapter accepts.
        """
        self.clear()
        if spec is None:
            return
        if isinstance(spec, (str, int)):
            index = self.index_of(spec)
            if index >= 0:
                self.domain = self.domains[index]
            return
        if not isinstance(spec, Tensor):
            spec = torch.tensor([self.index_of(s) for s in spec],
                                dtype=torch.long)
        if spec.is_floating_point():
            if spec.dim() != 2 or spec.shape[1] != len(self.domains):
                raise ValueError(
                    f'domain weights must be [B, D={len(self.domains)}] '
                    f'(domains {self.domains}), got {tuple(spec.shape)}')
            self.weights = spec
            return
        if spec.dim() != 1:
            raise ValueError(f'domain ids must be [B], got shape '
                             f'{tuple(spec.shape)}')
        if spec.numel() and ((spec < -1) | (spec >= len(self.domains))).any():
            raise ValueError(
                f'domain ids {spec.tolist()} must be in [-1, '
                f'{len(self.domains) - 1}] (domains {self.domains}; -1 '
                'means none)')
        first = int(spec[0]) if spec.numel() else -1
        if spec.numel() and first >= 0 and bool((spec == first).all()):
            self.domain = self.domains[first]
        elif spec.numel() and bool((spec == -1).all()):
            return
        else:
            self.ids = spec.long()

    def index_of(self, domain: Union[str, int]) -> int:
        """Index of ``domain`` (a name or an index) in :attr:`domains`."""
        if isinstance(domain, str):
            if domain not in self.domains:
                raise KeyError(f'unknown domain {domain!r}; the adapter '
                               f'has domains {self.domains}')
            return self.domains.index(domain)
        index = int(domain)
        if not -1 <= index < len(self.domains):
            raise KeyError(f'domain index {index} is out of range for '
                           f'domains {self.domains} (-1 means none)')
        return index

    def describe(self) -> str:
        if self.domain is not None:
            return f'domain {self.domain!r}'
        if self.ids is not None:
            return f'per-sample ids {self.ids.tolist()}'
        if self.weights is not None:
            return f'per-sample weights of shape {tuple(self.weights.shape)}'
        return 'no domain'
