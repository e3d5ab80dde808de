import torch
import torch.nn.functional as F

from hvlm.models.text import CaptionDecoder, QuestionVideoEncoder


def build(**kwargs):
    torch.manual_seed(0)
    cfg = dict(vocab_size=12, embed_dims=16, num_layers=2, num_heads=2,
               max_len=8, dropout=0.)
    cfg.update(kwargs)
    return CaptionDecoder(**cfg).eval()


def memory(S=2, M=5, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(S, M, 16, generator=gen), torch.zeros(S, M)


def test_teacher_forcing_loss_is_cross_entropy_over_words():
    dec = build()
    mem, bias = memory()
    targets = torch.tensor([[2, 5, 6, 3, 0, 0], [2, 7, 3, 0, 0, 0]])
    total, count = dec.loss(targets, mem, bias)
    logits = dec(targets[:, :-1], mem, bias)
    gold = targets[:, 1:]
    keep = gold != 0
    expected = F.cross_entropy(logits[keep], gold[keep], reduction='sum')
    torch.testing.assert_close(total, expected)
    assert count.item() == keep.sum().item() == 5


def test_decoder_is_causal_and_reads_memory():
    dec = build()
    mem, bias = memory()
    a = torch.tensor([[2, 5, 6, 7]])
    b = torch.tensor([[2, 5, 9, 4]])
    la, lb = dec(a, mem[:1], bias[:1]), dec(b, mem[:1], bias[:1])
    torch.testing.assert_close(la[:, :2], lb[:, :2])  # same prefix
    assert not torch.allclose(la[:, 2:], lb[:, 2:])
    other = dec(a, mem[1:], bias[:1])
    assert not torch.allclose(other, la)


def test_memory_bias_masks_tokens_and_counts_size():
    """-inf hides a token; log(2) on one token equals duplicating it."""
    dec = build()
    mem, bias = memory(S=1, M=3)
    prefix = torch.tensor([[2, 5, 6]])
    masked = bias.clone()
    masked[0, 2] = float('-inf')
    torch.testing.assert_close(
        dec(prefix, mem, masked), dec(prefix, mem[:, :2], bias[:, :2]))
    doubled = bias.clone()
    doubled[0, 0] = torch.tensor(2.).log()
    dup = torch.cat([mem[:, :1], mem], dim=1)
    torch.testing.assert_close(
        dec(prefix, mem, doubled), dec(prefix, dup, torch.zeros(1, 4)))


def test_generate_greedy_and_beam():
    dec = build()
    mem, bias = memory(S=3)
    greedy = dec.generate(mem, bias, beam_size=1)
    beam = dec.generate(mem, bias, beam_size=3)
    assert len(greedy) == len(beam) == 3
    for row in greedy + beam:
        assert len(row) <= 7 and dec.eos_id not in row


def test_question_encoder_ignores_padding_and_reads_video():
    torch.manual_seed(0)
    enc = QuestionVideoEncoder(12, 16, num_layers=1, num_heads=2,
                               max_len=6, dropout=0.).eval()
    mem, bias = memory(S=1)
    short = enc(torch.tensor([[2, 5, 6]]), mem, bias)
    padded = enc(torch.tensor([[2, 5, 6, 0, 0]]), mem, bias)
    torch.testing.assert_close(short, padded)
    other_video = enc(torch.tensor([[2, 5, 6]]), memory(S=1, seed=5)[0],
                      bias)
    assert not torch.allclose(short, other_video)
