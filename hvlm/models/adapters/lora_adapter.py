"""Inject per-domain LoRA into the linears of a model, select, merge, save."""
import re
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch import Tensor

from hvlm.registry import ADAPTERS
from .domain_selection import DomainSelection, DomainSpec
from .lora_linear import LoRALinear

FILE_FORMAT = 'hvlm-lora'
FILE_VERSION = 1


@ADAPTERS.register_module()
class LoRAAdapter:
    """One LoRA set per domain in every linear layer whose name matches.

    Domain adaptation then trains a few thousand parameters per domain
    instead of the whole backbone (Hu et al., *LoRA*, ICLR 2022); the
    domains share the frozen base weights, and one domain's factors are
    saved and shipped alone.

    This object is the handle on the injected layers, not a module: the
    factors are parameters of the :class:`LoRALinear` layers that replace
    the matched linears inside the model, so they follow the model's
    ``state_dict``, ``.to()`` and optimizer like any other parameter.

    Args:
        domains (Sequence[str]): One adapter set per name.
        target_modules (Sequence[str]): Regular expressions searched
            (``re.search``) in each ``nn.Linear``'s qualified name inside the
            module given to :meth:`inject`; ``('attn', 'mlp')`` matches the
            encoder's ``...attn.qkv``, ``...attn.proj``, ``...mlp.fc1`` and
            ``...mlp.fc2`` (the original's ``target_layers: ["attention",
            "mlp"]``).
        rank (int): ``r`` of every update.
        alpha (float): Updates are scaled by ``alpha / r``.
        dropout (float): Dropout on the low-rank path's input.
        freeze_base (bool): Domain fine-tuning: :meth:`freeze` leaves only
            the LoRA factors of ``train_domains`` (and ``trainable_modules``)
            trainable. The model applies it when it is built.
        train_domains (Sequence[str], optional): Domains trained when
            ``freeze_base``; all of them when omitted.
        trainable_modules (Sequence[str]): Regular expressions of other
            parameter names kept trainable when ``freeze_base``, e.g.
            ``('^head\\.',)`` to also fine-tune the heads.
    """

    def __init__(self,
                 domains: Sequence[str] = ('general', 'sports', 'tutorials',
                                           'news'),
                 target_modules: Sequence[str] = ('attn', 'mlp'),
                 rank: int = 8,
                 alpha: float = 16.,
                 dropout: float = 0.05,
                 freeze_base: bool = False,
                 train_domains: Optional[Sequence[str]] = None,
                 trainable_modules: Sequence[str] = ()) -> None:
        if isinstance(domains, str):
            domains = (domains, )
        if isinstance(target_modules, str):
            target_modules = (target_modules, )
        self.domains = tuple(domains)
        if not self.domains or len(set(self.domains)) != len(self.domains):
            raise ValueError(f'domains={domains} must be a non-empty '
                             'sequence of distinct names')
        if not target_modules:
            raise ValueError('target_modules must name at least one pattern, '
                             "e.g. ('attn', 'mlp')")
        self.target_modules = tuple(target_modules)
        self._patterns = [re.compile(p) for p in self.target_modules]
        self.rank, self.alpha, self.dropout = rank, float(alpha), dropout
        self.freeze_base = bool(freeze_base)
        train_domains = self.domains if train_domains is None else (
            (train_domains, ) if isinstance(train_domains, str) else
            tuple(train_domains))
        unknown = [d for d in train_domains if d not in self.domains]
        if unknown:
            raise ValueError(f'train_domains has {unknown}, which are not '
                             f'among domains={self.domains}')
        self.train_domains = train_domains
        self.trainable_modules = tuple(trainable_modules)
        self.selection = DomainSelection(self.domains)
        self.layers: Dict[str, LoRALinear] = {}

    # ------------------------------------------------------------------
    # injection and selection
    # ------------------------------------------------------------------
    def inject(self, module: nn.Module) -> List[str]:
        """Replace every matched ``nn.Linear`` of ``module`` by a
        :class:`LoRALinear` sharing its weight; returns the names."""
        if self.layers:
            raise RuntimeError('this LoRAAdapter is already injected into '
                               f'{len(self.layers)} layers')
        matched: List[Tuple[str, nn.Linear]] = [
            (name, m) for name, m in module.named_modules()
            if type(m) is nn.Linear and any(
                p.search(name) for p in self._patterns)
        ]
        if not matched:
            linears = [n for n, m in module.named_modules()
                       if isinstance(m, nn.Linear)]
            raise ValueError(
                f'target_modules={self.target_modules} match no nn.Linear; '
                f'the linears are {linears[:8]}'
                f'{" ..." if len(linears) > 8 else ""}')
        for name, linear in matched:
            parent_name, _, child = name.rpartition('.')
            parent = module.get_submodule(parent_name)
            layer = LoRALinear.from_linear(
                linear, self.domains, rank=self.rank, alpha=self.alpha,
                dropout=self.dropout, selection=self.selection)
            setattr(parent, child, layer)
            self.layers[name] = layer
        return list(self.layers)

    def select(self, spec: DomainSpec) -> None:
        """Choose the adapters of the next forward passes: a domain name or
        index for the batch, ``ids [B]`` (``-1``: none) or names per sample,
        ``weights [B, D]`` for a blend, ``None`` for the base model."""
        self.selection.set(spec)

    def index_of(self, domain) -> int:
        return self.selection.index_of(domain)

    # ------------------------------------------------------------------
    # merge for inference
    # ------------------------------------------------------------------
    def merge(self, domain: str) -> None:
        """Fold ``domain`` into the base weights of every layer and select
        it, so inference runs at the cost of the plain model."""
        self._check_injected()
        for layer in self.layers.values():
            layer.merge(domain)
        self.select(domain)

    def unmerge(self) -> None:
        """Restore the exact base weights."""
        for layer in self.layers.values():
            layer.unmerge()

    @property
    def merged_domain(self) -> Optional[str]:
        merged = {layer.merged_domain for layer in self.layers.values()}
        return merged.pop() if len(merged) == 1 else None

    # ------------------------------------------------------------------
    # parameters, freezing
    # ------------------------------------------------------------------
    def lora_parameters(self, domains: Optional[Sequence[str]] = None
                        ) -> Iterator[nn.Parameter]:
        for d in self.domains if domains is None else domains:
            for layer in self.layers.values():
                yield layer.lora_A[d]
                yield layer.lora_B[d]

    def freeze(self, model: nn.Module) -> List[str]:
        """Make every parameter of ``model`` frozen except the LoRA factors
        of :attr:`train_domains` and the parameters matching
        :attr:`trainable_modules`; returns the trainable names."""
        self._check_injected()
        keep = {id(p) for p in self.lora_parameters(self.train_domains)}
        if not keep <= {id(p) for p in model.parameters()}:
            raise ValueError('freeze(model) needs the model the adapter was '
                             'injected into (or one containing it)')
        patterns = [re.compile(p) for p in self.trainable_modules]
        trainable = []
        for name, p in model.named_parameters():
            p.requires_grad_(id(p) in keep or any(
                pat.search(name) for pat in patterns))
            if p.requires_grad:
                trainable.append(name)
        return trainable

    # ------------------------------------------------------------------
    # one domain alone: state dict, file
    # ------------------------------------------------------------------
    def domain_state_dict(self, domain: str) -> Dict[str, Tensor]:
        """``'<layer>.lora_A' / '<layer>.lora_B' -> tensor`` of one domain,
        cloned to CPU (the file holds nothing of the backbone)."""
        self._check_injected()
        self.index_of(domain)
        out = {}
        for name, layer in self.layers.items():
            for key, value in layer.lora_state_dict(domain).items():
                out[f'{name}.{key}'] = value.detach().to('cpu').clone()
        return out

    def save(self, path: str, domain: str) -> None:
        """Write ``domain``'s factors and the settings needed to check them
        on load; only tensors, strings and numbers, so the file loads with
        ``torch.load(weights_only=True)``."""
        torch.save(
            dict(format=FILE_FORMAT, version=FILE_VERSION, domain=domain,
                 rank=self.rank, alpha=self.alpha,
                 target_modules=list(self.target_modules),
                 state_dict=self.domain_state_dict(domain)), path)

    def load(self, path: str, domain: Optional[str] = None) -> str:
        """Load a file written by :meth:`save` into ``domain`` (default: the
        domain it was saved from); returns the domain loaded into."""
        self._check_injected()
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
        if not isinstance(ckpt, dict) or ckpt.get('format') != FILE_FORMAT:
            raise ValueError(f'{path} is not an hvlm LoRA file (expected a '
                             f"dict with format={FILE_FORMAT!r})")
        domain = domain or ckpt['domain']
        self.index_of(domain)
        if ckpt['rank'] != self.rank or ckpt['alpha'] != self.alpha:
            raise ValueError(
                f'{path} has rank={ckpt["rank"]}, alpha={ckpt["alpha"]}; '
                f'this adapter has rank={self.rank}, alpha={self.alpha}')
        state = ckpt['state_dict']
        expected = {f'{n}.{k}' for n in self.layers
                    for k in ('lora_A', 'lora_B')}
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise ValueError(
                f'{path} does not fit this model: missing '
                f'{sorted(missing)[:4]}, unexpected {sorted(unexpected)[:4]} '
                f'({len(missing)} / {len(unexpected)} in all)')
        with torch.no_grad():
            for name, layer in self.layers.items():
                for key in ('lora_A', 'lora_B'):
                    target = getattr(layer, key)[domain]
                    value = state[f'{name}.{key}']
                    if value.shape != target.shape:
                        raise ValueError(
                            f'{path}: {name}.{key} has shape '
                            f'{tuple(value.shape)}, the model expects '
                            f'{tuple(target.shape)}')
                    target.copy_(value)
        return domain

    def _check_injected(self) -> None:
        if not self.layers:
            raise RuntimeError('LoRAAdapter.inject(module) has not been '
                               'called yet')

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(domains={self.domains}, '
                f'target_modules={self.target_modules}, rank={self.rank}, '
                f'alpha={self.alpha:g}, layers={len(self.layers)})')
