"""Running a frozen CLIP's two towers layer by layer, so that prompt
learners can insert learned tokens where the methods put them.

Every function here reproduces what transformers' CLIP does when nothing is
inserted (tested to 1e-5 against it): text gets positions added after the
tokens are assembled, a causal mask plus the padding mask, the final layer
norm and pooling at the end token; images get the class token, positions,
the pre-norm, and the post-norm of the class token. Gradients reach the
inserted tokens through the frozen weights.
"""
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class ClipTowers:
    """The parts of a loaded CLIP a prompt learner needs (not a module:
    the recognizer owns and freezes the weights).

    Args:
        text_model: transformers' CLIP text transformer (``embeddings``,
            ``encoder.layers``, ``final_layer_norm``).
        text_projection: Its projection into the shared space.
        vision_model: CLIP's vision transformer (``embeddings``,
            ``pre_layrnorm``, ``encoder.layers``, ``post_layernorm``).
        visual_projection: Its projection into the shared space.
        tokenizer: The directory's tokenizer.
        eos_token_id (int): Where CLIP pools a text.
        max_length (int): Most text positions.
    """
    text_model: Any
    text_projection: Any
    vision_model: Any
    visual_projection: Any
    tokenizer: Any
    eos_token_id: int
    max_length: int

    @property
    def text_width(self) -> int:
        return self.text_model.embeddings.token_embedding.embedding_dim

    @property
    def vision_width(self) -> int:
        return self.vision_model.embeddings.patch_embedding.out_channels

    @property
    def text_depth(self) -> int:
        return len(self.text_model.encoder.layers)

    @property
    def vision_depth(self) -> int:
        return len(self.vision_model.encoder.layers)

    def word_ids(self, text: str) -> List[int]:
        """Token ids of ``text`` without start and end tokens."""
        return list(self.tokenizer(text, add_special_tokens=False)
                    ['input_ids'])

    @property
    def bos_token_id(self) -> int:
        bos = self.tokenizer.bos_token_id
        if bos is None:
            raise ValueError('the CLIP tokenizer has no start token')
        return int(bos)

    def embed_ids(self, ids: Sequence[int]) -> Tensor:
        """Token embeddings ``[len(ids), C]`` (no positions)."""
        emb = self.text_model.embeddings.token_embedding
        return emb(torch.as_tensor(list(ids), dtype=torch.long,
                                   device=emb.weight.device))


def text_mask(attention_mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Additive ``[N, 1, L, L]`` mask: causal, and padded keys masked.
    ``attention_mask [N, L]`` is 1 on tokens, 0 on padding (a 0/1 mask is
    never added as such)."""
    N, L = attention_mask.shape
    causal = torch.ones(L, L, dtype=torch.bool,
                        device=attention_mask.device).tril()
    allowed = causal[None] & attention_mask.bool()[:, None, :]  # [N, L, L]
    # a padded query row would see nothing: let it see itself (its output
    # is never pooled)
    allowed = allowed | torch.eye(L, dtype=torch.bool,
                                  device=allowed.device)[None]
    mask = torch.zeros(N, 1, L, L, dtype=dtype, device=attention_mask.device)
    return mask.masked_fill(~allowed[:, None], torch.finfo(dtype).min)


def encode_text_embeddings(towers: ClipTowers,
                           token_embeds: Tensor,
                           attention_mask: Tensor,
                           eos_index: Tensor,
                           deep_prompts: Optional[Tensor] = None,
                           prompt_start: int = 1) -> Tensor:
    """Text features from assembled token embeddings.

    Args:
        token_embeds (Tensor): ``[N, L, C]`` token embeddings (learned
            context included), without positions.
        attention_mask (Tensor): ``[N, L]``, 1 on tokens.
        eos_index (Tensor): ``[N]`` position of each end token.
        deep_prompts (Tensor, optional): ``[depth, n, C]`` or
            ``[depth, N, n, C]``: before layer ``i`` (1 <= i <= depth) the
            states at ``prompt_start : prompt_start + n`` are replaced by
            ``deep_prompts[i - 1]`` (MaPLe-style deep text prompts; layer 0
            sees the context inside ``token_embeds``).
        prompt_start (int): Position of the first context token.

    Returns:
        Tensor: ``[N, D]`` projected (not normalised) features.
    """
    tm = towers.text_model
    N, L, _ = token_embeds.shape
    positions = tm.embeddings.position_embedding.weight[:L]  # [L, C]
    hidden = token_embeds + positions[None]
    mask = text_mask(attention_mask, hidden.dtype)
    for i, layer in enumerate(tm.encoder.layers):
        if deep_prompts is not None and 1 <= i <= deep_prompts.shape[0]:
            hidden = replace_tokens(hidden, deep_prompts[i - 1],
                                    prompt_start)
        hidden = layer(hidden, mask)
    hidden = tm.final_layer_norm(hidden)
    pooled = hidden[torch.arange(N, device=hidden.device), eos_index]
    return towers.text_projection(pooled)


def replace_tokens(hidden: Tensor, prompts: Tensor, start: int) -> Tensor:
    """``hidden [N, L, C]`` with ``start : start + n`` set to ``prompts``
    (``[n, C]`` shared or ``[N, n, C]``)."""
    n = prompts.shape[-2]
    if prompts.dim() == 2:
        prompts = prompts.expand(hidden.shape[0], -1, -1)
    return torch.cat(
        [hidden[:, :start], prompts, hidden[:, start + n:]], dim=1)


def assemble_prompts(towers: ClipTowers, context: Tensor,
                     name_ids: Sequence[Sequence[int]],
                     suffix: Optional[Tensor] = None
                     ) -> Tuple[Tensor, Tensor, Tensor]:
    """CoOp's text input: ``[start] context name-tokens [suffix] [end]``.

    Args:
        context (Tensor): ``[n, C]`` shared or ``[K, n, C]`` per class.
        name_ids (Sequence[Sequence[int]]): Each class's word ids.
        suffix (Tensor, optional): ``[K, m, C]`` tokens after the name,
            before the end token (STT's video-conditioned tokens).

    Returns:
        tuple: ``token_embeds [K, L, C]``, ``attention_mask [K, L]`` and
        ``eos_index [K]``; names are cut to fit ``max_length``.
    """
    K = len(name_ids)
    if context.dim() == 2:
        context = context.expand(K, -1, -1)
    n = context.shape[1]
    m = 0 if suffix is None else suffix.shape[1]
    room = towers.max_length - 2 - n - m
    if room < 1:
        raise ValueError(f'ctx_len={n} (+{m}) leaves no room for the class '
                         f'name in {towers.max_length} text positions')
    ids = [list(x)[:room] for x in name_ids]
    L = 2 + n + m + max(len(x) for x in ids)
    bos = towers.embed_ids([towers.bos_token_id])  # [1, C]
    eos = towers.embed_ids([towers.eos_token_id])  # [1, C]
    rows, masks, eos_index = [], [], []
    for k, words in enumerate(ids):
        parts = [bos, context[k], towers.embed_ids(words)
                 if words else bos[:0]]
        if suffix is not None:
            parts.append(suffix[k])
        parts.append(eos)
        row = torch.cat(parts)  # [l, C]
        length = row.shape[0]
        rows.append(F.pad(row, (0, 0, 0, L - length)))
        masks.append(torch.arange(L) < length)
        eos_index.append(length - 1)
    device = context.device
    return (torch.stack(rows), torch.stack(masks).long().to(device),
            torch.tensor(eos_index, device=device))


def encode_images(towers: ClipTowers,
                  frames: Tensor,
                  prompts: Optional[Tensor] = None,
                  layer_tokens=None) -> Tensor:
    """Image features of ``frames [N, 3, H, W]`` (at the model's size).

    Args:
        prompts (Tensor, optional): Visual prompt tokens appended after the
            patch tokens: ``[1, n, C]`` (or ``[1, N, n, C]``) enter before
            the first layer and stay (shallow); ``[depth, n, C]`` replace
            the last ``n`` tokens before each of the first ``depth`` layers
            (deep).
        layer_tokens (callable, optional): ``f(i, hidden) -> hidden`` run
            before layer ``i``, for methods whose tokens depend on the
            states (ViTA); it may change the number of tokens after the
            class token.

    Returns:
        Tensor: ``[N, D]`` projected (not normalised) features.
    """
    vm = towers.vision_model
    hidden = vm.pre_layrnorm(vm.embeddings(frames))  # [N, 1 + P, C]
    N = hidden.shape[0]
    for i, layer in enumerate(vm.encoder.layers):
        if prompts is not None and i < prompts.shape[0]:
            p = prompts[i]
            if p.dim() == 2:
                p = p.expand(N, -1, -1)
            if i > 0:
                hidden = hidden[:, :-p.shape[1]]
            hidden = torch.cat([hidden, p], dim=1)
        if layer_tokens is not None:
            hidden = layer_tokens(i, hidden)
        hidden = layer(hidden, None)
    cls = vm.post_layernorm(hidden[:, 0])  # [N, C]
    return towers.visual_projection(cls)


def encode_texts(towers: ClipTowers, texts: Sequence[str]) -> Tensor:
    """Features ``[K, D]`` of plain texts (hand-written templates), as
    ``[start] words [end]`` through :func:`encode_text_embeddings`."""
    empty = towers.embed_ids([towers.bos_token_id])[:0]  # [0, C]
    return encode_text_embeddings(
        towers, *assemble_prompts(towers, empty,
                                  [towers.word_ids(t) for t in texts]))
