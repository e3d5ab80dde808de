import itertools

import pytest
import torch

from hvlm.models.text import beam_search, greedy_search

BOS, EOS, V = 0, 1, 4


def make_step(seed):
    """A fixed random next-token model over V tokens whose distribution
    depends on the whole prefix."""
    gen = torch.Generator().manual_seed(seed)
    table = {}

    def step(prefix):
        rows = []
        for row in prefix.tolist():
            key = tuple(row)
            if key not in table:
                table[key] = torch.randn(V, generator=gen).mul(2).log_softmax(
                    -1)
            rows.append(table[key])
        return torch.stack(rows)

    return step


def exhaustive(step, max_len):
    """Best complete sequence: ends at EOS or after max_len tokens."""
    best, best_score = None, -float('inf')
    for length in range(1, max_len + 1):
        for tokens in itertools.product(range(V), repeat=length):
            if EOS in tokens[:-1]:
                continue
            if length < max_len and tokens[-1] != EOS:
                continue
            score, prefix = 0., [BOS]
            for t in tokens:
                score += float(step(torch.tensor([prefix]))[0, t])
                prefix.append(t)
            if score > best_score:
                best, best_score = list(tokens), score
    return best, best_score


@pytest.mark.parametrize('seed', range(6))
def test_wide_beam_equals_exhaustive_search(seed):
    step = make_step(seed)
    best, score = exhaustive(step, max_len=4)
    found, found_score = beam_search(step, BOS, EOS, 4, beam_size=V**4)
    assert found == best
    assert found_score == pytest.approx(score, abs=1e-5)


def test_beam_is_never_worse_than_greedy_and_beam_one_is_greedy():
    for seed in range(10):
        step = make_step(seed)
        greedy = greedy_search(step, BOS, EOS, 5, batch_size=1)[0].tolist()
        if EOS in greedy:
            greedy = greedy[:greedy.index(EOS) + 1]
        one, _ = beam_search(step, BOS, EOS, 5, beam_size=1)
        assert one == greedy
        _, s3 = beam_search(step, BOS, EOS, 5, beam_size=3)
        prefix, g_score = [BOS], 0.
        for t in greedy:
            g_score += float(step(torch.tensor([prefix]))[0, t])
            prefix.append(t)
        assert s3 >= g_score - 1e-6


def test_greedy_batch_rows_are_independent_and_pad_with_eos():
    step = make_step(3)
    batch = greedy_search(step, BOS, EOS, 5, batch_size=3)
    assert batch.shape[0] == 3 and batch.shape[1] <= 5
    assert torch.equal(batch[0], batch[1])
    row = batch[0].tolist()
    if EOS in row:
        assert all(t == EOS for t in row[row.index(EOS):])


def test_errors():
    with pytest.raises(ValueError, match='beam_size=0'):
        beam_search(make_step(0), BOS, EOS, 3, beam_size=0)
