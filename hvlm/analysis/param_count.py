"""Count a model's parameters, trainable ones apart, without its memory."""
from collections import OrderedDict
from contextlib import contextmanager
from typing import Dict, Iterator

import torch
import torch.nn as nn

from hvlm.registry import MODELS


@contextmanager
def parameters_on_meta() -> Iterator[None]:
    """Move every parameter to the ``meta`` device as it is registered.

    ``with torch.device('meta')`` would be simpler but also puts the small
    tensors that constructors compute with (``torch.linspace(...).tolist()``)
    on ``meta``, where they have no values. Here each parameter is made on
    the CPU as usual and replaced at registration by a storage-less copy,
    so a base-size model never holds more than one layer's weights. A
    parameter registered twice (tied weights) maps to one meta copy and is
    counted once.
    """
    original = nn.Module.register_parameter
    memo: Dict[int, tuple] = {}

    def register(module, name, param):
        if param is not None and param.device.type != 'meta':
            if id(param) not in memo:
                memo[id(param)] = (param, nn.Parameter(
                    torch.empty_like(param, device='meta'),
                    requires_grad=param.requires_grad))
            param = memo[id(param)][1]
        original(module, name, param)

    nn.Module.register_parameter = register
    try:
        yield
    finally:
        nn.Module.register_parameter = original


def build_model_on_meta(model_cfg: dict) -> nn.Module:
    """Build ``model_cfg`` with its parameters on the ``meta`` device
    (shapes, no storage): a base-size model is counted without its memory,
    and the count is exactly that of the real model."""
    import hvlm.models  # noqa: F401  (registers every component)
    with parameters_on_meta():
        return MODELS.build(model_cfg)


def count_parameters(model: nn.Module) -> Dict[str, object]:
    """Totals and a per-part breakdown.

    Returns:
        dict: ``total`` and ``trainable`` (numbers of scalars, shared
        parameters counted once), ``trainable_ratio``, ``parts``
        (``top-level child -> (total, trainable)``) and ``lora_per_domain``
        (``domain -> scalars`` of its LoRA factors, when the model has a
        LoRA adapter).
    """
    seen = set()
    total = trainable = 0
    parts: Dict[str, list] = OrderedDict()
    for name, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        part = name.split('.', 1)[0]
        counts = parts.setdefault(part, [0, 0])
        counts[0] += p.numel()
        total += p.numel()
        if p.requires_grad:
            counts[1] += p.numel()
            trainable += p.numel()
    out = dict(
        total=total,
        trainable=trainable,
        trainable_ratio=trainable / total if total else 0.,
        parts={k: tuple(v) for k, v in parts.items()},
        lora_per_domain={})
    adapter = getattr(model, 'adapter', None)
    if adapter is not None and hasattr(adapter, 'lora_parameters'):
        out['lora_per_domain'] = {
            d: sum(p.numel() for p in adapter.lora_parameters([d]))
            for d in adapter.domains
        }
    return out


def format_counts(counts: Dict[str, object]) -> str:
    """A small table of :func:`count_parameters`' result."""
    lines = [f'{"part":<16}{"total":>14}{"trainable":>14}']
    for part, (n, t) in counts['parts'].items():
        lines.append(f'{part:<16}{n:>14,}{t:>14,}')
    lines.append(f'{"all":<16}{counts["total"]:>14,}'
                 f'{counts["trainable"]:>14,}')
    lines.append(f'trainable share: {100 * counts["trainable_ratio"]:.3f} %')
    for d, n in counts['lora_per_domain'].items():
        lines.append(f'LoRA of {d!r}: {n:,} parameters '
                     f'({100 * n / counts["total"]:.3f} % of all)')
    return '\n'.join(lines)
