"""A pretrained causal language model and its tokenizer, loaded from a local
directory, as the text generator behind video tokens."""
import inspect
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import Tensor

from hvlm.registry import ADAPTERS, MODELS
from ..layers.hf_local import (check_directory, fingerprint,
                               import_transformers, load_tokenizer,
                               quiet_transformers, same_fingerprint,
                               set_train_mode_by_grad)
from .generation import STRATEGIES, Decoder, prefix_attention_mask
from .peft_format import load_peft_adapter, save_peft_adapter

DTYPES = dict(float32=torch.float32, bfloat16=torch.bfloat16,
              float16=torch.float16)
# config.json keys that hold the context length, by family
CONTEXT_KEYS = ('max_position_embeddings', 'n_positions', 'n_ctx')


def load_causal_lm(path: str, dtype: torch.dtype) -> nn.Module:
    """``AutoModelForCausalLM.from_pretrained(path, local_files_only=True)``
    refusing weights that are missing or of another shape (transformers
    would initialise them at random and only log it)."""
    transformers = import_transformers()
    with quiet_transformers():
        try:
            model, info = transformers.AutoModelForCausalLM.from_pretrained(
                path, local_files_only=True, dtype=dtype,
                output_loading_info=True)
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            raise ValueError(
                f'cannot load a causal LM from {path}: {e}') from e
    for what, keys in (('missing from the weights file',
                        info.get('missing_keys', ())),
                       ('of a different shape than config.json says',
                        info.get('mismatched_keys', ()))):
        keys = sorted(k if isinstance(k, str) else k[0] for k in keys)
        if keys:
            raise ValueError(
                f'{path}: {len(keys)} weights are {what}: '
                f'{", ".join(keys[:5])}{" ..." if len(keys) > 5 else ""}. '
                'The directory is incomplete or its config.json belongs to '
                'another checkpoint')
    return model


def linearize(model: nn.Module, name: str) -> nn.Linear:
    """Replace GPT-2's ``Conv1D`` (``y = x W + b``, ``W [in, out]``) called
    ``name`` by the same map as an ``nn.Linear`` (``W^T``), which LoRA
    wraps. The weight keeps its name and its values, transposed."""
    conv = model.get_submodule(name)
    in_features, out_features = conv.weight.shape
    linear = nn.Linear(in_features, out_features, bias=conv.bias is not None,
                       device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(conv.weight.t())
        if conv.bias is not None:
            linear.bias.copy_(conv.bias)
    linear.weight.requires_grad_(conv.weight.requires_grad)
    if linear.bias is not None:
        linear.bias.requires_grad_(conv.bias.requires_grad)
    parent, _, child = name.rpartition('.')
    setattr(model.get_submodule(parent), child, linear)
    return linear


@MODELS.register_module()
class HFCausalLM(BaseModule):
    """A causal LM (``AutoModelForCausalLM``: LLaMA, Qwen2, GPT-2, ...) and
    its tokenizer from a directory written by ``save_pretrained``; nothing
    is downloaded (``local_files_only=True``), and a directory that cannot be
    used fails when the model is built, naming the path and the file.

    The LM reads embeddings (:meth:`embed` of token ids, or anything of
    width :attr:`embed_dims`, e.g. projected video tokens) and returns
    next-token logits; :meth:`generate` decodes greedily, by beam search or
    by sampling, with a key/value cache, on left-padded batches.

    Frozen by default: no weight of the LM trains and it stays in eval mode
    whatever the Runner asks (gradients still flow *through* it to what
    feeds it). ``lora`` injects hvlm's per-domain LoRA (``ADAPTERS``) into
    the linears whose names match its ``target_modules`` (``'q_proj'``,
    ``'v_proj'``, GPT-2's ``'c_attn'``...); those factors train (those of
    ``train_domains``) while the base stays frozen. GPT-2's ``Conv1D``
    layers that LoRA targets are turned into the equivalent ``nn.Linear``
    first. Adapters travel as PEFT files (:meth:`save_adapter`,
    :meth:`load_adapter`).

    A tokenizer without a pad token (GPT-2's) pads with its end token; the
    log says so once. Padded positions are masked everywhere, so the choice
    only affects the ids stored there.

    Args:
        pretrained (str): Local directory (``config.json``, weights,
            tokenizer files).
        freeze (bool): Freeze every weight of the LM (LoRA factors aside).
        with_cp (bool): Gradient checkpointing in the decoder layers
            (non-reentrant), also when the LM is frozen and only its inputs
            need gradients.
        dtype (str): ``'float32'``, ``'bfloat16'`` or ``'float16'``: the
            dtype the weights are loaded in (LoRA factors take it too).
        lora (dict, optional): A ``LoRAAdapter`` config.
        init_cfg (dict, optional): mmengine initialisation config; the
            pretrained weights are kept whatever it says (see
            :meth:`init_weights`).
    """

    def __init__(self,
                 pretrained: str,
                 freeze: bool = True,
                 with_cp: bool = False,
                 dtype: str = 'float32',
                 lora: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if dtype not in DTYPES:
            raise ValueError(f'dtype={dtype!r} must be one of '
                             f'{sorted(DTYPES)}')
        self.pretrained = pretrained
        self.config_json = check_directory(pretrained)
        self.dtype = DTYPES[dtype]
        self.tokenizer = self._load_tokenizer()
        self.model = load_causal_lm(pretrained, self.dtype)
        cfg = self.model.config
        self.embed_dims = int(cfg.get_text_config().hidden_size)
        self.num_layers = int(cfg.get_text_config().num_hidden_layers)
        self.context_length = next(
            (int(getattr(cfg, k)) for k in CONTEXT_KEYS
             if getattr(cfg, k, None)), None)
        if self.context_length is None:
            raise ValueError(f'{pretrained}/config.json has none of '
                             f'{CONTEXT_KEYS}: the context length is unknown')
        vocab = self.model.get_input_embeddings().num_embeddings
        if len(self.tokenizer) > vocab:
            raise ValueError(
                f'{pretrained}: the tokenizer has {len(self.tokenizer)} '
                f'tokens but the model embeds only {vocab}')
        self.freeze = freeze
        for p in self.model.parameters():
            p.requires_grad_(not freeze)
        self.with_cp = with_cp
        if with_cp:
            # renamed activation_checkpointing_enable in transformers 5
            enable = getattr(self.model, 'activation_checkpointing_enable',
                             None) or self.model.gradient_checkpointing_enable
            enable(dict(use_reentrant=False))
        self._cache_kwarg = 'cache' in inspect.signature(
            self.model.forward).parameters
        self.adapter = None
        self.linearized: List[str] = []
        if lora is not None:
            self._inject(lora)
        self._loaded = [(name, p, fingerprint(p))
                        for name, p in self.model.named_parameters()
                        if 'lora_' not in name]
        self.train(self.training)

    # ------------------------------------------------------------------
    # loading
    # ------------------------------------------------------------------
    def _load_tokenizer(self):
        path = self.pretrained
        vocab = self.config_json.get('vocab_size')
        tokenizer = load_tokenizer(path,
                                   vocab if isinstance(vocab, int) else None)
        if tokenizer.eos_token_id is None:
            raise ValueError(
                f'{path}: the tokenizer has no eos_token; generation needs '
                'one to know where an answer ends (set eos_token in '
                'tokenizer_config.json)')
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
            print_log(
                f'{path}: the tokenizer has no pad token; padding with its '
                f'eos token {tokenizer.eos_token!r} (padded positions are '
                'masked out of attention and loss)',
                logger='current', level=30)
        return tokenizer

    def _inject(self, lora: dict) -> None:
        lora = dict(lora)
        lora.setdefault('type', 'LoRAAdapter')
        if lora.pop('freeze_base', False) or lora.get('trainable_modules'):
            raise ValueError(
                'llm.lora: freeze_base and trainable_modules act on the '
                'whole model; the LM freezes its base with llm.freeze')
        self.adapter = ADAPTERS.build(lora)
        patterns = self.adapter._patterns
        for name, module in list(self.model.named_modules()):
            if type(module).__name__ == 'Conv1D' and any(
                    p.search(name) for p in patterns):
                linearize(self.model, name)
                self.linearized.append(name)
        self.adapter.inject(self.model)
        trained = {id(p) for p in self.adapter.lora_parameters(
            self.adapter.train_domains)}
        for p in self.adapter.lora_parameters():
            p.requires_grad_(id(p) in trained)

    def init_weights(self) -> None:
        """Keep the pretrained weights: any that an enclosing ``init_cfg``
        changed are read again from the directory (LoRA factors keep their
        own initialisation)."""
        changed = [(name, p) for name, p, before in self._loaded
                   if not same_fingerprint(fingerprint(p), before)]
        if not changed:
            return
        print_log(
            f'HFCausalLM: {len(changed)} pretrained weights were changed '
            f'(e.g. by an init_cfg); reloading them from {self.pretrained}',
            logger='current')
        fresh = load_causal_lm(self.pretrained, self.dtype).state_dict()
        with torch.no_grad():
            for name, p in changed:
                value = fresh[name]
                p.copy_(value if value.shape == p.shape else value.t())

    # ------------------------------------------------------------------
    # modes and domains
    # ------------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        return any(p.requires_grad for p in self.model.parameters())

    def set_lora_trainable(self, flag: bool) -> None:
        """Switch the LoRA factors of ``train_domains`` on or off (the
        training stages: projector first, then LoRA)."""
        if self.adapter is None:
            return
        for p in self.adapter.lora_parameters(self.adapter.train_domains):
            p.requires_grad_(flag)
        self.train(self.training)

    def set_trainable(self, flag: bool) -> None:
        """Switch on or off what this LM trains: the LoRA factors of
        ``train_domains``, and with ``freeze=False`` every base weight too
        (the training stages: projector first, then the LM). A frozen LM
        (``freeze=True``) keeps its base weights frozen either way."""
        if not self.freeze:
            for name, p in self.model.named_parameters():
                if 'lora_' not in name:
                    p.requires_grad_(flag)
        self.set_lora_trainable(flag)
        self.train(self.training)

    @property
    def trained_part(self) -> str:
        """What :meth:`set_trainable` switches, in words (for logs)."""
        if not self.freeze:
            return 'the whole LM' + (' and its LoRA' if self.adapter else '')
        return "the LM's LoRA" if self.adapter else 'nothing (frozen LM)'

    def train(self, mode: bool = True) -> 'HFCausalLM':
        self.training = mode
        set_train_mode_by_grad(self.model, mode)
        if self.with_cp and mode:
            # transformers checkpoints a layer only in train mode; a frozen
            # LM stays in eval mode for its dropout, but its layers (not
            # their dropout modules) say "training" so that they checkpoint
            for module in self.model.modules():
                if getattr(module, 'gradient_checkpointing', False) is True:
                    module.training = True
        return self

    def domain_ids(self, domains: Sequence[Optional[str]]) -> Optional[Tensor]:
        """Index of each name among the adapter's domains (``-1``: none);
        ``None`` without an adapter."""
        if self.adapter is None:
            return None
        known = self.adapter.domains
        return torch.tensor([known.index(d) if d in known else -1
                             for d in domains], dtype=torch.long)

    def _select(self, domain_ids: Optional[Tensor]) -> None:
        if self.adapter is None:
            return
        if self.adapter.merged_domain is not None:
            self.adapter.select(self.adapter.merged_domain)
        else:
            self.adapter.select(domain_ids)

    # ------------------------------------------------------------------
    # text <-> ids <-> embeddings
    # ------------------------------------------------------------------
    @property
    def eos_token_id(self) -> int:
        return int(self.tokenizer.eos_token_id)

    @property
    def pad_token_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def encode(self, text: str) -> List[int]:
        """Token ids of ``text`` without special tokens."""
        return self.tokenizer(text, add_special_tokens=False)['input_ids']

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def embed(self, ids: Tensor) -> Tensor:
        """``ids [..., L]`` -> ``[..., L, embed_dims]``."""
        return self.model.get_input_embeddings()(ids)

    # ------------------------------------------------------------------
    # forward and generation
    # ------------------------------------------------------------------
    def forward(self,
                inputs_embeds: Tensor,
                attention_mask: Tensor,
                position_ids: Optional[Tensor] = None,
                past_key_values=None,
                use_cache: bool = False,
                domain_ids: Optional[Tensor] = None,
                prefix: Optional[Tensor] = None,
                prefix_attention: str = 'causal',
                output_hidden_states: bool = False):
        """``inputs_embeds [B, L, C]`` (left-padded: ``attention_mask
        [B, L']`` is 0 on padding; ``L' > L`` with a cache) -> logits
        ``[B, L, V]`` and the cache (``None`` without ``use_cache``).

        ``prefix [B, L'']`` (``L'' <= L'``, the rest ``False``) flags the
        tokens (the video's) that attend among themselves as
        ``prefix_attention`` says (:func:`prefix_attention_mask`:
        ``'causal'``, ``'bidirectional'`` or ``'self'``); the others
        attend causally.

        With ``output_hidden_states`` a third element: the states of every
        layer, ``num_layers + 1`` tensors ``[B, L, C]`` (the input
        embeddings first, the last after the final norm, as Hugging Face
        returns them)."""
        self._select(domain_ids)
        queries = inputs_embeds.shape[1]
        if prefix is not None and prefix_attention != 'causal' and bool(
                prefix[:, attention_mask.shape[1] - queries:].any()):
            # a 4D mask goes to the attention layers as it is
            prefix = nn.functional.pad(
                prefix.bool(), (0, attention_mask.shape[1] - prefix.shape[1]))
            attention_mask = prefix_attention_mask(
                attention_mask, prefix, queries, prefix_attention,
                self.dtype)
        # transformers >= 5.25 names the cache `cache`, before it
        # `past_key_values`
        key = 'cache' if self._cache_kwarg else 'past_key_values'
        out = self.model(
            inputs_embeds=inputs_embeds.to(self.dtype),
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=use_cache,
            output_hidden_states=output_hidden_states,
            **{key: past_key_values})
        cache = getattr(out, key) if use_cache else None
        if output_hidden_states:
            return out.logits, cache, out.hidden_states
        return out.logits, cache

    def hidden_states(self,
                      inputs_embeds: Tensor,
                      attention_mask: Tensor,
                      position_ids: Optional[Tensor] = None,
                      domain_ids=None) -> Tensor:
        """The last layer's states ``[B, L, C]`` (after the final norm) for
        a model that reads the LM's states rather than its next-token
        logits (SceneLLM); the vocabulary projection is not computed.
        Arguments as :meth:`forward`; ``domain_ids`` may also be a domain
        name for the whole batch."""
        self._select(domain_ids)
        out = self.model.base_model(
            inputs_embeds=inputs_embeds.to(self.dtype),
            attention_mask=attention_mask,
            position_ids=position_ids,
            use_cache=False)
        return out.last_hidden_state

    @torch.no_grad()
    def generate(self,
                 inputs_embeds: Tensor,
                 attention_mask: Tensor,
                 max_new_tokens: int = 32,
                 strategy: str = 'greedy',
                 num_beams: int = 4,
                 temperature: float = 1.,
                 top_k: int = 0,
                 top_p: float = 1.,
                 length_penalty: float = 1.,
                 use_cache: bool = True,
                 generator: Optional[torch.Generator] = None,
                 domain_ids: Optional[Tensor] = None,
                 prefix: Optional[Tensor] = None,
                 prefix_attention: str = 'causal') -> List[List[int]]:
        """Continue each left-padded row of ``inputs_embeds [B, L, C]``;
        returns each row's new token ids (the end token left out).

        Args:
            strategy (str): ``'greedy'``, ``'beam'`` (``num_beams``,
                ``length_penalty``) or ``'sample'`` (``temperature``,
                ``top_k``, ``top_p``; reproducible with ``generator``).
            use_cache (bool): Reuse keys and values (the default); without
                it every step reruns the sequence (the speed baseline).
            domain_ids (Tensor, optional): ``[B]`` LoRA domain per row.
            prefix (Tensor, optional): ``[B, L]`` flags of the tokens that
                attend among themselves as ``prefix_attention`` says (see
                :meth:`forward`).
        """
        if strategy not in STRATEGIES:
            raise ValueError(f'strategy={strategy!r} must be one of '
                             f'{STRATEGIES}')
        if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ValueError(f'max_new_tokens={max_new_tokens!r} must be a '
                             'positive integer')
        length = inputs_embeds.shape[1] + max_new_tokens
        if length > self.context_length:
            raise ValueError(
                f'{inputs_embeds.shape[1]} prompt tokens + max_new_tokens='
                f'{max_new_tokens} exceed the context of {self.pretrained} '
                f'({self.context_length} tokens)')
        if strategy == 'beam' and domain_ids is not None:
            domain_ids = domain_ids.repeat_interleave(num_beams)
        if domain_ids is not None:
            domain_ids = domain_ids.to(inputs_embeds.device)
        if prefix is not None and strategy == 'beam':
            # a beam's rows stay among its source row's beams
            prefix = prefix.repeat_interleave(num_beams, 0)

        def step(embeds, mask, positions, past):
            return self(embeds, mask, positions, past, use_cache,
                        domain_ids, prefix, prefix_attention)

        def reorder(past, rows):
            past.reorder_cache(rows)
            return past

        def embed(ids):
            return self.embed(ids)

        decoder = Decoder(step, embed, reorder, self.eos_token_id,
                          use_cache)
        embeds = inputs_embeds.to(self.dtype)
        if strategy == 'beam':
            return decoder.beam(embeds, attention_mask, max_new_tokens,
                                num_beams, length_penalty)
        return decoder.greedy_or_sample(
            embeds, attention_mask, max_new_tokens, strategy == 'sample',
            temperature, top_k, top_p, generator)

    # ------------------------------------------------------------------
    # adapters as PEFT files
    # ------------------------------------------------------------------
    def save_adapter(self, path: str, domain: str) -> None:
        """Write ``domain``'s LoRA as a PEFT adapter directory
        (``adapter_config.json`` + ``adapter_model.safetensors``) that
        ``peft.PeftModel.from_pretrained(base, path)`` loads."""
        self._check_adapter()
        save_peft_adapter(self.adapter, domain, path,
                          base_model=self.pretrained,
                          module_names=[n for n, _ in
                                        self.model.named_modules()],
                          fan_in_fan_out=bool(self.linearized))

    def load_adapter(self, path: str, domain: str) -> None:
        """Load a PEFT LoRA adapter directory (e.g. trained with ``peft``)
        into ``domain``."""
        self._check_adapter()
        load_peft_adapter(self.adapter, domain, path)

    def _check_adapter(self) -> None:
        if self.adapter is None:
            raise RuntimeError(f'{self.pretrained}: no LoRA is injected; '
                               'set lora=dict(type="LoRAAdapter", ...)')

    def extra_repr(self) -> str:
        return (f'pretrained={self.pretrained!r}, freeze={self.freeze}, '
                f'dtype={self.dtype}, context={self.context_length}')
