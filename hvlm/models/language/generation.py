"""Decoding a causal LM that starts from embeddings (a video prefix and a
prompt), with or without a key/value cache.

The model is reached through one callable, ``step(embeds, mask, positions,
past) -> (logits [N, L, V], past)``, so the loops below know nothing of
transformers. Rows are left-padded: ``mask`` is 0 on the padding, and each
row's positions count its own tokens only (``cumsum(mask) - 1``), so a row
decodes the same alone or in a batch.
"""
from typing import Callable, List, Optional, Tuple

import torch
from torch import Tensor

STRATEGIES = ('greedy', 'beam', 'sample')
# how the prefix's (video) tokens attend among themselves
PREFIX_ATTENTION = ('causal', 'bidirectional', 'self')
Step = Callable[[Tensor, Tensor, Tensor, object], Tuple[Tensor, object]]
Embed = Callable[[Tensor], Tensor]
Reorder = Callable[[object, Tensor], object]


def left_pad_positions(mask: Tensor) -> Tensor:
    """``[N, L]`` position of every token among its row's real tokens
    (0 on the left padding)."""
    return (mask.long().cumsum(-1) - 1).clamp_min(0)


def prefix_attention_mask(mask: Tensor, prefix: Tensor, query_len: int,
                          mode: str, dtype: torch.dtype) -> Tensor:
    """The additive attention mask ``[N, 1, query_len, K]`` (0 where a
    query reads a key, the dtype's lowest value where it does not) of the
    last ``query_len`` of ``K`` positions of left-padded rows (``mask
    [N, K]``, 0 on the padding), where the positions flagged in ``prefix
    [N, K]`` (the video tokens) attend among themselves as ``mode`` says:

    - ``'causal'``: as every other token, to themselves and what precedes;
    - ``'bidirectional'``: also to every later prefix token (the prefix-LM
      of PaliGemma, Beyer et al. 2024: image tokens and prompt read each
      other both ways);
    - ``'self'``: to themselves only, so that each stays what it was, as
      the video memory a cross-attention head reads.

    Every other query attends causally to all real tokens before it. A
    padding query reads nothing (its row of the softmax is uniform and its
    output unused).
    """
    if mode not in PREFIX_ATTENTION:
        raise ValueError(f'prefix attention {mode!r} must be one of '
                         f'{PREFIX_ATTENTION}')
    K = mask.shape[1]
    keys = torch.arange(K, device=mask.device)
    queries = keys[K - query_len:]
    allowed = keys[None, :] <= queries[:, None]  # [q, K] causal
    prefix = prefix.bool()
    query_prefix = prefix[:, K - query_len:, None]  # [N, q, 1]
    if mode == 'bidirectional':
        allowed = allowed | (query_prefix & prefix[:, None, :])
    elif mode == 'self':
        allowed = torch.where(query_prefix,
                              keys[None, :] == queries[:, None], allowed)
    allowed = allowed & mask.bool()[:, None, :]  # [N, q, K]
    out = torch.zeros(allowed.shape, dtype=dtype, device=mask.device)
    return out.masked_fill(~allowed, torch.finfo(dtype).min)[:, None]


def filter_logits(logits: Tensor, top_k: int = 0,
                  top_p: float = 1.) -> Tensor:
    """``logits [N, V]`` with everything outside the ``top_k`` best and
    outside the smallest set whose probability reaches ``top_p`` (nucleus
    sampling, Holtzman et al. 2020) set to ``-inf``."""
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float('-inf'))
    if top_p < 1.:
        order = logits.argsort(dim=-1, descending=True)  # [N, V]
        sorted_probs = logits.gather(-1, order).softmax(-1)
        # drop a token when the tokens before it already reach top_p
        before = sorted_probs.cumsum(-1) - sorted_probs
        drop = torch.zeros_like(logits, dtype=torch.bool).scatter(
            -1, order, before >= top_p)
        logits = logits.masked_fill(drop, float('-inf'))
    return logits


class Decoder:
    """One decoding run over ``embeds [N, L, C]`` / ``mask [N, L]``.

    Args:
        step: The model (see the module docstring).
        embed: Token ids ``[N, 1]`` -> embeddings ``[N, 1, C]``.
        reorder: ``(past, rows) -> past`` keeping the cache rows ``rows``
            (beam search).
        eos_id (int): Ends a sequence (not returned).
        use_cache (bool): Feed only the new token each step and reuse the
            keys and values; without it every step reruns the whole
            sequence (same result, quadratic cost: the baseline).
    """

    def __init__(self, step: Step, embed: Embed, reorder: Reorder,
                 eos_id: int, use_cache: bool = True) -> None:
        self.step, self.embed, self.reorder = step, embed, reorder
        self.eos_id, self.use_cache = eos_id, use_cache

    def _start(self, embeds: Tensor, mask: Tensor):
        logits, past = self.step(embeds, mask, left_pad_positions(mask),
                                 None)
        return logits[:, -1].float(), past

    def _next(self, state, token: Tensor):
        """Append ``token [N]``; returns the last logits and the state."""
        embeds, mask, past = state
        new = self.embed(token[:, None])  # [N, 1, C]
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        if self.use_cache:
            pos = mask.long().sum(-1, keepdim=True) - 1  # [N, 1]
            logits, past = self.step(new, mask, pos, past)
        else:
            embeds = torch.cat([embeds, new.to(embeds.dtype)], dim=1)
            logits, past = self.step(embeds, mask, left_pad_positions(mask),
                                     None)
        return logits[:, -1].float(), (embeds, mask, past)

    def _strip(self, rows: Tensor) -> List[List[int]]:
        out = []
        for row in rows.tolist():
            out.append(row[:row.index(self.eos_id)]
                       if self.eos_id in row else row)
        return out

    def greedy_or_sample(self, embeds: Tensor, mask: Tensor,
                         max_new_tokens: int, sample: bool = False,
                         temperature: float = 1., top_k: int = 0,
                         top_p: float = 1.,
                         generator: Optional[torch.Generator] = None
                         ) -> List[List[int]]:
        """Token ids of each row (up to ``max_new_tokens``, without the
        end token)."""
        logits, past = self._start(embeds, mask)
        state = (embeds, mask, past)
        done = torch.zeros(embeds.shape[0], dtype=torch.bool,
                           device=embeds.device)
        tokens = []
        for t in range(max_new_tokens):
            if sample:
                probs = filter_logits(logits / temperature, top_k,
                                      top_p).softmax(-1)
                token = torch.multinomial(
                    probs.cpu(), 1, generator=generator)[:, 0].to(
                        logits.device)
            else:
                token = logits.argmax(-1)  # [N]
            token = token.masked_fill(done, self.eos_id)
            tokens.append(token)
            done |= token == self.eos_id
            if done.all() or t == max_new_tokens - 1:
                break
            logits, state = self._next(state, token)
        return self._strip(torch.stack(tokens, 1)) if tokens else \
            [[] for _ in range(embeds.shape[0])]

    def beam(self, embeds: Tensor, mask: Tensor, max_new_tokens: int,
             num_beams: int, length_penalty: float = 1.
             ) -> List[List[int]]:
        """Beam search: keep the ``num_beams`` best partial sequences by
        summed log-probability; a finished beam (end token) keeps its
        score; the answer is the best by ``score / length **
        length_penalty`` (the end token counts in the length)."""
        N, K = embeds.shape[0], num_beams
        embeds = embeds.repeat_interleave(K, 0)  # [N*K, L, C]
        mask = mask.repeat_interleave(K, 0)
        logits, past = self._start(embeds, mask)
        state = (embeds, mask, past)
        device = embeds.device
        # only the first beam of each row is live at the start, so the K
        # beams do not all pick the same first token
        score = torch.full((N, K), float('-inf'), device=device)
        score[:, 0] = 0.
        done = torch.zeros(N, K, dtype=torch.bool, device=device)
        length = torch.zeros(N, K, device=device)
        seqs = torch.zeros(N, K, 0, dtype=torch.long, device=device)
        for t in range(max_new_tokens):
            logp = logits.log_softmax(-1).view(N, K, -1)  # [N, K, V]
            V = logp.shape[-1]
            # a finished beam only extends with the end token, at no cost
            finished = torch.full_like(logp, float('-inf'))
            finished[..., self.eos_id] = 0.
            logp = torch.where(done[..., None], finished, logp)
            total = (score[..., None] + logp).view(N, K * V)
            score, flat = total.topk(K, dim=-1)  # [N, K]
            beam, token = flat // V, flat % V  # [N, K]
            seqs = torch.cat([seqs.gather(1, beam[..., None].expand(
                -1, -1, seqs.shape[-1])), token[..., None]], dim=-1)
            was_done = done.gather(1, beam)
            length = length.gather(1, beam) + (~was_done).float()
            done = was_done | (token == self.eos_id)
            if done.all() or t == max_new_tokens - 1:
                break
            rows = (beam + torch.arange(N, device=device)[:, None] *
                    K).view(-1)  # [N*K]
            embeds, mask, past = state
            state = (embeds[rows], mask[rows],
                     self.reorder(past, rows) if past is not None else None)
            logits, state = self._next(state, token.view(-1))
        normalised = score / length.clamp_min(1)**length_penalty
        best = normalised.argmax(-1)  # [N]
        return self._strip(seqs[torch.arange(N, device=device), best])
