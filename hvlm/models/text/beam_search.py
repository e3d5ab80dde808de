"""Greedy and beam-search decoding over any next-token model."""
from typing import Callable, List, Tuple

import torch
from torch import Tensor

# prefixes [K, L] (LongTensor, BOS first) -> next-token log-probs [K, V]
StepFn = Callable[[Tensor], Tensor]


def greedy_search(step: StepFn, bos_id: int, eos_id: int, max_len: int,
                  batch_size: int, device=None) -> Tensor:
    """Pick the most likely next token until every row has emitted
    ``eos_id`` or ``max_len`` tokens were generated.

    Returns:
        ``LongTensor [batch_size, <= max_len]`` generated tokens (no BOS);
        after a row's EOS it holds EOS.
    """
    seq = torch.full((batch_size, 1), bos_id, dtype=torch.long,
                     device=device)  # [B, 1]
    done = torch.zeros(batch_size, dtype=torch.bool, device=device)
    for _ in range(max_len):
        next_ids = step(seq).argmax(-1)  # [B]
        next_ids = next_ids.masked_fill(done, eos_id)
        seq = torch.cat([seq, next_ids[:, None]], dim=1)  # [B, L+1]
        done |= next_ids == eos_id
        if bool(done.all()):
            break
    return seq[:, 1:]


def beam_search(step: StepFn, bos_id: int, eos_id: int, max_len: int,
                beam_size: int, device=None) -> Tuple[List[int], float]:
    """The most likely sequence found by beam search (Graves 2012; as used
    for captioning by Vinyals et al. 2015, "Show and Tell").

    A hypothesis ends when it emits ``eos_id`` (its score includes the EOS
    log-probability) or reaches ``max_len`` tokens. At every step the
    ``beam_size`` best continuations that do not end are kept alive, and
    those that end with a score among the ``beam_size`` best candidates are
    finished. The search stops early once the best finished score is at
    least the best alive one: log-probabilities are <= 0, so no alive
    hypothesis can overtake it. With ``beam_size`` at least the number of
    possible sequences the result is the exact argmax.

    Args:
        step: Next-token log-probabilities for a batch of prefixes.
        bos_id, eos_id: Start and end tokens.
        max_len: Most tokens generated (EOS included).
        beam_size: Hypotheses kept alive per step.

    Returns:
        ``(tokens, score)``: the generated ids without BOS (with the EOS
        when one was emitted) and their summed log-probability.
    """
    if beam_size < 1:
        raise ValueError(f'beam_size={beam_size} must be >= 1')
    alive = torch.full((1, 1), bos_id, dtype=torch.long,
                       device=device)  # [K, 1]
    alive_scores = torch.zeros(1, device=device)  # [K]
    finished: List[Tuple[List[int], float]] = []
    for length in range(1, max_len + 1):
        logp = step(alive).float()  # [K, V]
        vocab = logp.shape[1]
        cand = (alive_scores[:, None] + logp).reshape(-1)  # [K*V]
        order = cand.argsort(descending=True)
        ends = (order % vocab) == eos_id  # [K*V]
        for flat in order[:beam_size][ends[:beam_size]].tolist():
            tokens = alive[flat // vocab, 1:].tolist() + [eos_id]
            finished.append((tokens, float(cand[flat])))
        keep = order[~ends][:beam_size]  # [K']
        alive = torch.cat([alive[keep // vocab], (keep % vocab)[:, None]],
                          dim=1)  # [K', length+1]
        alive_scores = cand[keep]
        if length == max_len:
            finished += [(row[1:], float(s))
                         for row, s in zip(alive.tolist(),
                                           alive_scores.tolist())]
            break
        best_done = max((s for _, s in finished), default=float('-inf'))
        if alive.shape[0] == 0 or best_done >= float(alive_scores.max()):
            break
    return max(finished, key=lambda f: f[1])
