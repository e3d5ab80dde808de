"""One domain of hvlm's LoRA as a PEFT adapter directory, and back.

PEFT (``peft.PeftModel.save_pretrained``) writes a LoRA adapter as

- ``adapter_config.json``: ``peft_type='LORA'``, ``r``, ``lora_alpha``,
  ``lora_dropout``, ``target_modules`` (module-name suffixes, or one
  regular expression that must match a whole name), ``fan_in_fan_out``
  (True for GPT-2's ``Conv1D``), ``task_type``, ...;
- ``adapter_model.safetensors``: for each adapted module ``<name>`` of the
  base model, ``base_model.model.<name>.lora_A.weight [r, in]`` and
  ``base_model.model.<name>.lora_B.weight [out, r]``; the update is
  ``(lora_alpha / r) B A`` as in hvlm.

hvlm's factors are the same tensors under other names, so the conversion
is exact. Only the features both sides share are accepted: plain LoRA
(no rsLoRA, DoRA, per-layer ranks, LoRA bias or saved extra modules).

The adapter is used through its documented surface (``layers``, ``rank``,
``alpha``, ``dropout``, ``lora_A`` / ``lora_B`` of each layer), so this
module needs nothing from the adapters package.
"""
import json
import os
import os.path as osp
import re

import torch

PREFIX = 'base_model.model.'
CONFIG_FILE = 'adapter_config.json'
WEIGHTS_FILE = 'adapter_model.safetensors'
# PEFT options whose non-default values hvlm's LoRA cannot reproduce
UNSUPPORTED = dict(use_rslora=False, use_dora=False, rank_pattern={},
                   alpha_pattern={}, modules_to_save=None, lora_bias=False,
                   layers_to_transform=None, bias='none')


def exact_targets(adapted, module_names):
    """PEFT's ``target_modules`` that selects exactly the ``adapted``
    modules among ``module_names``: their last name components when those
    select no other module, else one regular expression that PEFT matches
    against whole names."""
    suffixes = sorted({n.rpartition('.')[2] for n in adapted})
    selected = {n for n in module_names
                if n.rpartition('.')[2] in suffixes}
    if selected == set(adapted):
        return suffixes
    return '(' + '|'.join(re.escape(n) for n in sorted(adapted)) + ')'


def save_peft_adapter(adapter, domain: str, path: str, base_model: str,
                      module_names, fan_in_fan_out: bool = False,
                      task_type: str = 'CAUSAL_LM') -> None:
    """Write ``domain``'s factors of ``adapter`` (a ``LoRAAdapter``
    injected into a transformers model whose modules are ``module_names``)
    into the directory ``path``."""
    from safetensors.torch import save_file
    state = adapter.domain_state_dict(domain)  # '<name>.lora_A' -> tensor
    tensors = {
        f'{PREFIX}{key}.weight': value.contiguous()
        for key, value in state.items()
    }
    config = dict(
        peft_type='LORA', task_type=task_type,
        base_model_name_or_path=base_model, r=adapter.rank,
        lora_alpha=adapter.alpha, lora_dropout=adapter.dropout,
        target_modules=exact_targets(list(adapter.layers), module_names),
        fan_in_fan_out=fan_in_fan_out, inference_mode=True,
        init_lora_weights=True, **UNSUPPORTED)
    os.makedirs(path, exist_ok=True)
    save_file(tensors, osp.join(path, WEIGHTS_FILE),
              metadata=dict(format='pt'))
    with open(osp.join(path, CONFIG_FILE), 'w') as f:
        json.dump(config, f, indent=2)


def load_peft_adapter(adapter, domain: str, path: str) -> None:
    """Copy the LoRA factors of the PEFT directory ``path`` into
    ``domain`` of ``adapter``; the file must cover exactly the adapter's
    layers with its rank and scaling."""
    from safetensors.torch import load_file
    cfg_file = osp.join(path, CONFIG_FILE)
    if not osp.isfile(cfg_file):
        raise FileNotFoundError(f'{cfg_file} is missing: a PEFT adapter '
                                f'directory holds {CONFIG_FILE} and '
                                f'{WEIGHTS_FILE}')
    with open(cfg_file) as f:
        cfg = json.load(f)
    if cfg.get('peft_type') != 'LORA':
        raise ValueError(f'{cfg_file}: peft_type={cfg.get("peft_type")!r};'
                         ' only LORA adapters load into hvlm')
    for key, default in UNSUPPORTED.items():
        if (cfg.get(key, default) or None) != (default or None):
            raise ValueError(f'{cfg_file}: {key}={cfg[key]!r} is not '
                             f'supported by hvlm\'s LoRA (needs {default!r})')
    adapter.index_of(domain)
    rank, alpha = cfg.get('r'), cfg.get('lora_alpha')
    if rank != adapter.rank or float(alpha) / rank != \
            adapter.alpha / adapter.rank:
        raise ValueError(
            f'{cfg_file}: r={rank}, lora_alpha={alpha}; this adapter has '
            f'rank={adapter.rank}, alpha={adapter.alpha:g} (set llm.lora '
            'rank and alpha to the file\'s)')
    weights = osp.join(path, WEIGHTS_FILE)
    if not osp.isfile(weights):
        raise FileNotFoundError(f'{weights} is missing')
    state = load_file(weights)
    expected = {f'{PREFIX}{name}.{ab}.weight': (name, ab)
                for name in adapter.layers for ab in ('lora_A', 'lora_B')}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f'{weights} does not fit this model\'s LoRA layers: missing '
            f'{missing[:3]}, unexpected {unexpected[:3]} ({len(missing)} / '
            f'{len(unexpected)} in all); inject LoRA into the same modules '
            f'(the file targets {cfg.get("target_modules")})')
    with torch.no_grad():
        for key, (name, ab) in expected.items():
            target = getattr(adapter.layers[name], ab)[domain]
            value = state[key]
            if value.shape != target.shape:
                raise ValueError(
                    f'{weights}: {key} has shape {tuple(value.shape)}, the '
                    f'model expects {tuple(target.shape)}')
            target.copy_(value.to(target.dtype))
