import pytest
import torch
import torch.nn.functional as F

import hvlm.models  # noqa: F401
from hvlm.structures import VideoFeatures
from hvlm.models.heads.video_memory import time_features
from hvlm.models.text import WordTokenizer
from hvlm.registry import HEADS
from hvlm.structures import VideoDataSample

QUESTIONS = ['what colour is it?', 'what shape is it?']
TOKENIZER = WordTokenizer.train(QUESTIONS + ['unused words here'])


def feats_from(tokens, num_clips=1):
    """Unmerged features on a (T0=2, 1, N/2) grid."""
    B, N, _ = tokens.shape
    index = torch.arange(N).expand(B, -1)
    return VideoFeatures(tokens, torch.ones(B, N), index, (2, 1, N // 2), 2,
                         4, num_clips)


def sample(qa, video_id='v'):
    s = VideoDataSample(metainfo=dict(video_id=video_id))
    s.gt_qa = [dict(question=q, answer_id=a) for q, a in qa]
    return s


def build(**kwargs):
    cfg = dict(type='VideoQAHead', in_channels=8, num_answers=6,
               vocab_size=32, embed_dims=16, num_layers=1, num_heads=2,
               dropout=0.)
    cfg.update(kwargs)
    head = HEADS.build(cfg)
    head.set_tokenizer(TOKENIZER)
    return head


def test_loss_is_cross_entropy_over_known_answers():
    torch.manual_seed(0)
    head = build(label_smoothing=0.1, loss_weight=2.)
    feats = feats_from(torch.randn(2, 4, 8))
    samples = [sample([(QUESTIONS[0], 1), (QUESTIONS[1], -1)]),
               sample([(QUESTIONS[1], 4)])]
    loss = head.loss(feats, samples)['loss_answer']
    logits = head._logits(feats, torch.tensor([0, 1]),
                          [QUESTIONS[0], QUESTIONS[1]])
    expected = 2. * F.cross_entropy(logits, torch.tensor([1, 4]),
                                    label_smoothing=0.1)
    torch.testing.assert_close(loss, expected)


def test_no_question_gives_connected_zero():
    head = build()
    feats = feats_from(torch.randn(2, 4, 8, requires_grad=True))
    s = VideoDataSample()
    loss = head.loss(feats, [s, sample([(QUESTIONS[0], -1)])])['loss_answer']
    assert loss.item() == 0.
    loss.backward()
    assert torch.all(head.fc_answer.weight.grad == 0)
    assert feats.tokens.grad is not None


def test_prediction_depends_on_the_video():
    torch.manual_seed(0)
    head = build().eval()
    tokens = torch.randn(2, 4, 8)
    samples = [sample([(QUESTIONS[0], 0)]), sample([(QUESTIONS[0], 0)])]
    logits = head._logits(feats_from(tokens), torch.tensor([0, 1]),
                          [QUESTIONS[0]] * 2)
    swapped = head._logits(feats_from(tokens.flip(0)), torch.tensor([0, 1]),
                           [QUESTIONS[0]] * 2)
    torch.testing.assert_close(swapped, logits.flip(0))
    assert not torch.allclose(logits[0], logits[1])
    out = head.predict(feats_from(tokens), samples)
    assert [p['question'] for p in out[0].pred_qa] == [QUESTIONS[0]]
    assert out[0].pred_qa[0]['answer_id'] == int(logits[0].argmax())
    assert out[0].pred_qa[0]['score'] == pytest.approx(
        float(logits[0].detach().softmax(-1).max()), rel=1e-5)


def test_answers_need_video_and_question():
    """Answer = f(question, video): colour question -> the colour token's
    class, shape question -> the shape token's. Blind to the video or to
    the question, the best accuracy is 0.5; the head learns it."""
    torch.manual_seed(0)
    colours, shapes = torch.randn(2, 8) * 2, torch.randn(2, 8) * 2
    videos, samples = [], []
    for c in range(2):
        for s in range(2):
            for _ in range(4):
                tokens = torch.randn(4, 8) * 0.3
                tokens[torch.randint(0, 2, ()).item()] += colours[c]
                tokens[2 + torch.randint(0, 2, ()).item()] += shapes[s]
                videos.append(tokens)
                samples.append(sample([(QUESTIONS[0], c),
                                       (QUESTIONS[1], 2 + s)]))
    feats = feats_from(torch.stack(videos))
    head = build()
    optim = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(150):
        optim.zero_grad()
        head.loss(feats, samples)['loss_answer'].backward()
        optim.step()
    head.eval()
    out = head.predict(feats, samples)
    correct = [p['answer_id'] == g['answer_id'] for s in out
               for p, g in zip(s.pred_qa, s.gt_qa)]
    assert sum(correct) / len(correct) >= 0.95
    # the same head with the videos replaced by their mean cannot do it
    blind = feats_from(torch.stack(videos).mean(0, keepdim=True).expand(
        len(videos), -1, -1).contiguous())
    out = head.predict(blind, samples)
    correct = [p['answer_id'] == g['answer_id'] for s in out
               for p, g in zip(s.pred_qa, s.gt_qa)]
    assert sum(correct) / len(correct) <= 0.5


def test_time_features_order_the_steps():
    steps = torch.tensor([[0, 0], [1, 1], [2, 3], [7, 7]])  # of 8 steps
    out = time_features(steps, 8, 3)
    assert out.shape == (4, 6)
    centre = torch.tensor([0.5, 1.5, 3., 7.5]) / 8
    torch.testing.assert_close(out[:, 3], torch.cos(torch.pi * centre))
    assert torch.all(out[:, 3].diff() < 0)  # cos(pi r) falls with time
    with pytest.raises(ValueError, match='num_freqs=0'):
        time_features(steps, 8, 0)


def _first_or_last_videos():
    """Two clips per video; one carries pattern ``0``, the other ``1``.
    'what colour is it?' asks for the first clip's pattern, 'what shape is
    it?' for the last clip's. Every video also appears with its two clips
    in the other order (the same tokens) and the other answers, so only
    the tokens' time tells the answers apart."""
    torch.manual_seed(0)
    patterns = torch.randn(2, 8) * 2
    clips, samples = [], []
    for _ in range(6):
        pair = []
        for p in range(2):
            tokens = torch.randn(4, 8) * 0.3
            tokens[torch.randint(0, 4, ()).item()] += patterns[p]
            pair.append(tokens)
        for first in range(2):
            clips += [pair[first], pair[1 - first]]
            samples.append(sample([(QUESTIONS[0], first),
                                   (QUESTIONS[1], 1 - first)]))
    return feats_from(torch.stack(clips), num_clips=2), samples


def _train(head, feats, samples, steps=200):
    optim = torch.optim.Adam(head.parameters(), lr=3e-3)
    for _ in range(steps):
        optim.zero_grad()
        head.loss(feats, samples)['loss_answer'].backward()
        optim.step()
    head.eval()
    out = head.predict(feats, samples)
    correct = [p['answer_id'] == g['answer_id'] for s in out
               for p, g in zip(s.pred_qa, s.gt_qa)]
    return sum(correct) / len(correct)


def test_time_embedding_tells_first_from_last():
    feats, samples = _first_or_last_videos()
    torch.manual_seed(0)
    assert _train(build(), feats, samples) >= 0.95
    # the clips in the other order change the answers (question fixed)
    head = build()
    _train(head, feats, samples)
    swapped = feats_from(feats.tokens.reshape(-1, 2, 4, 8).flip(1).reshape(
        -1, 4, 8), num_clips=2)
    before = head._logits(feats, torch.tensor([0]), [QUESTIONS[0]])
    after = head._logits(swapped, torch.tensor([0]), [QUESTIONS[0]])
    assert before.argmax() != after.argmax()
    # without it the video is a set of tokens: the clip order is invisible,
    # so a video and its swapped twin get the same answer, one of them wrong
    torch.manual_seed(0)
    blind = build(time_freqs=0)
    assert blind.time_embed is None
    assert _train(blind, feats, samples) <= 0.5
    torch.testing.assert_close(
        blind._logits(swapped, torch.tensor([0]), [QUESTIONS[0]]),
        blind._logits(feats, torch.tensor([0]), [QUESTIONS[0]]))


def test_qa_loss_reaches_every_video_token():
    head = build()
    feats, samples = _first_or_last_videos()
    feats.tokens.requires_grad_(True)
    head.loss(feats, samples)['loss_answer'].backward()
    assert torch.all(feats.tokens.grad.abs().sum(-1) > 0)


def test_errors():
    with pytest.raises(ValueError, match='num_answers=0'):
        build(num_answers=0)
    with pytest.raises(ValueError, match='time_freqs=-1'):
        build(time_freqs=-1)
    head = build()
    feats = feats_from(torch.randn(1, 4, 8))
    with pytest.raises(ValueError, match='answer_id 6 but num_answers=6'):
        head.loss(feats, [sample([(QUESTIONS[0], 6)])])
    head.tokenizer = None
    with pytest.raises(RuntimeError, match='no tokenizer.*TokenizerHook'):
        head.loss(feats, [sample([(QUESTIONS[0], 1)])])
