import pytest
import torch

import hvlm.models  # noqa: F401
from hvlm.structures import VideoFeatures
from hvlm.models.text import WordTokenizer
from hvlm.registry import HEADS
from hvlm.structures import VideoDataSample

CAPTIONS = ['a red circle spins around', 'a blue bar rolls to the left']
TOKENIZER = WordTokenizer.train(CAPTIONS)
TIMES = [0.1 * i for i in range(8)]  # 8 frames, 10 fps


def feats_from(tokens):
    """Unmerged features, grid (T0=4, 1, 2), 2 frames per tubelet step."""
    B = tokens.shape[0]
    index = torch.arange(8).expand(B, -1)
    return VideoFeatures(tokens, torch.ones(B, 8), index, (4, 1, 2), 2, 8, 1)


def sample(captions=(), times=TIMES):
    s = VideoDataSample(metainfo=dict(video_id='v', frame_times=times))
    if captions is not None:
        s.gt_captions = [dict(text=t, start=a, end=b) for t, a, b in captions]
    return s


def build(**kwargs):
    cfg = dict(type='VideoCaptioningHead', in_channels=8, vocab_size=32,
               embed_dims=16, num_layers=1, num_heads=2, max_caption_len=10,
               dropout=0.)
    cfg.update(kwargs)
    head = HEADS.build(cfg)
    head.set_tokenizer(TOKENIZER)
    return head


def test_segment_memory_selects_tokens_by_time():
    head = build()
    feats = feats_from(torch.randn(1, 8, 8))
    # step t covers frames 2t, 2t+1: [0.2t, 0.2t + 0.1 + 0.1 gap]
    _, bias, seen = head.segment_memory(
        feats, [sample()], [(0, 0.0, 0.35), (0, 0.45, 0.5), (0, 3., 4.)])
    finite = torch.isfinite(bias)
    step_of_token = torch.arange(8) // 2
    assert torch.equal(finite[0], step_of_token < 2)
    assert torch.equal(finite[1], step_of_token == 2)
    assert torch.equal(finite[2], step_of_token == 3)  # nearest: the last
    assert seen.tolist() == [True, True, False]
    assert torch.all(bias[finite] == 0)  # log(size=1)


def test_loss_teacher_forcing_and_unseen_segments():
    torch.manual_seed(0)
    head = build(loss_weight=2.)
    feats = feats_from(torch.randn(1, 8, 8))
    s = sample([(CAPTIONS[0], 0., 0.4), (CAPTIONS[1], 5., 6.)])
    loss = head.loss(feats, [s])['loss_caption']
    memory, bias, _ = head.segment_memory(feats, [s], [(0, 0., 0.4)])
    targets = TOKENIZER.batch_encode([CAPTIONS[0]], 10, bos=True, eos=True)
    total, count = head.decoder.loss(targets, memory, bias)
    torch.testing.assert_close(loss, 2. * total / count)
    with_unseen = build(loss_weight=2., train_unseen=True)
    with_unseen.load_state_dict(head.state_dict())
    assert with_unseen.loss(feats, [s])['loss_caption'] != loss


def test_no_caption_gives_connected_zero():
    head = build()
    feats = feats_from(torch.randn(2, 8, 8, requires_grad=True))
    loss = head.loss(feats, [sample(None), sample([(CAPTIONS[0], 5., 6.)])])
    loss = loss['loss_caption']
    assert loss.item() == 0.
    loss.backward()
    assert torch.all(head.decoder.embed.weight.grad == 0)
    assert torch.all(head.decoder.word_bias.grad == 0)
    assert feats.tokens.grad is not None


def test_changing_the_video_changes_the_caption_logits():
    torch.manual_seed(0)
    head = build().eval()
    s = [sample([(CAPTIONS[0], 0., 0.8)])]
    prefix = TOKENIZER.batch_encode([CAPTIONS[0]], 10, bos=True)
    a = head.decoder(prefix, *head.segment_memory(
        feats_from(torch.randn(1, 8, 8)), s, [(0, 0., .8)])[:2])
    b = head.decoder(prefix, *head.segment_memory(
        feats_from(torch.randn(1, 8, 8)), s, [(0, 0., .8)])[:2])
    assert not torch.allclose(a, b)


@pytest.mark.parametrize('beam_size', [1, 3])
def test_overfit_captions_two_videos_differently(beam_size):
    """Two videos, each with two segments; every segment's caption is only
    inferable from its own tokens."""
    torch.manual_seed(0)
    pattern = torch.randn(2, 8) * 2
    tokens = torch.randn(2, 8, 8) * 0.1
    tokens[0, :4] += pattern[0]  # video 0: red circle first, blue bar after
    tokens[0, 4:] += pattern[1]
    tokens[1, :4] += pattern[1]  # video 1: the other way round
    tokens[1, 4:] += pattern[0]
    feats = feats_from(tokens)
    samples = [
        sample([(CAPTIONS[0], 0., 0.35), (CAPTIONS[1], 0.4, 0.75)]),
        sample([(CAPTIONS[1], 0., 0.35), (CAPTIONS[0], 0.4, 0.75)])
    ]
    head = build(beam_size=beam_size)
    optim = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(120):
        optim.zero_grad()
        head.loss(feats, samples)['loss_caption'].backward()
        optim.step()
    head.eval()
    out = head.predict(feats, samples)
    for s in out:
        assert [c['text'] for c in s.pred_captions] == \
            [c['text'] for c in s.gt_captions]
        assert [(c['start'], c['end']) for c in s.pred_captions] == \
            [(c['start'], c['end']) for c in s.gt_captions]


def test_segment_sources():
    head = build(segments='auto').eval()
    feats = feats_from(torch.randn(2, 8, 8))
    with_pred = sample(None)
    with_pred.pred_segments = torch.tensor([[0., .3], [.3, .8], [.1, .2]])
    with_pred.pred_segment_scores = torch.tensor([.2, .9, .1])
    plain = sample(None)
    out = head.predict(feats, [with_pred, plain])
    spans = [[c['start'], c['end']] for c in out[0].pred_captions]
    torch.testing.assert_close(
        torch.tensor(spans), torch.tensor([[.3, .8], [0., .3], [.1, .2]]))
    spans = [[c['start'], c['end']] for c in out[1].pred_captions]
    torch.testing.assert_close(torch.tensor(spans), torch.tensor([[0., .7]]))
    with pytest.raises(ValueError, match="segments='x' must be one of"):
        build(segments='x')
    no_times = VideoDataSample(metainfo=dict(video_id='w'))
    no_times.gt_captions = [dict(text='a', start=0., end=1.)]
    with pytest.raises(ValueError, match="'w' has no frame_times"):
        head.loss(feats_from(torch.randn(1, 8, 8)), [no_times])
