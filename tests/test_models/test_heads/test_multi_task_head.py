import pytest
import torch

import hvlm.models  # noqa: F401
from hvlm.structures import VideoFeatures
from hvlm.models.heads import BaseHead
from hvlm.registry import HEADS
from hvlm.structures import VideoDataSample


def make_feats():
    """2 videos x 2 clips of 5 frames, 8 channels, unmerged (3, 1, 2)
    tubelet grid."""
    return VideoFeatures(
        tokens=torch.randn(4, 6, 8), size=torch.ones(4, 6),
        index=torch.arange(6).expand(4, -1), grid=(3, 1, 2),
        temporal_patch=2, num_frames=5, num_clips=2)


class ConstantHead(BaseHead):
    """Returns a known loss and a logged extra, and tags predictions."""

    def __init__(self, value, tag):
        super().__init__()
        self.value, self.tag = value, tag
        self.scale = torch.nn.Parameter(torch.ones(()))

    def forward(self, feats):
        return self.scale * self.value

    def loss(self, feats, data_samples):
        return dict(loss_main=self.scale * self.value, acc=torch.tensor(.5))

    def predict(self, feats, data_samples):
        for s in data_samples:
            s.set_metainfo({self.tag: True})
        return data_samples


HEADS.register_module(name='_TestConstantHead', module=ConstantHead,
                      force=True)


def build(**weights):
    return HEADS.build(
        dict(type='MultiTaskHead',
             heads=dict(
                 a=dict(type='_TestConstantHead', value=2., tag='a'),
                 b=dict(type='_TestConstantHead', value=3., tag='b')),
             task_weights=weights))


def test_prefixed_and_weighted_losses():
    losses = build(a=0.5).loss(make_feats(), [])
    assert set(losses) == {'loss_a_main', 'a_acc', 'loss_b_main', 'b_acc'}
    assert losses['loss_a_main'].item() == 1.0  # 2 * 0.5
    assert losses['loss_b_main'].item() == 3.0  # missing weight -> 1
    assert losses['a_acc'].item() == 0.5  # logged extras are not weighted


def test_forward_returns_every_task():
    outputs = build()(make_feats())
    assert {k: v.item() for k, v in outputs.items()} == dict(a=2., b=3.)


def test_predict_runs_every_head():
    out = build().predict(make_feats(), [VideoDataSample()])
    assert out[0].a and out[0].b


def test_with_action_detection_head():
    head = HEADS.build(
        dict(type='MultiTaskHead',
             heads=dict(action_detection=dict(
                 type='ActionDetectionHead', in_channels=8, num_classes=4)),
             task_weights=dict(action_detection=2.)))
    s = [VideoDataSample(), VideoDataSample()]
    for x in s:
        x.gt_frame_labels = torch.zeros(10)
    losses = head.loss(make_feats(), s)
    assert list(losses) == [
        'loss_action_detection_cls', 'loss_action_detection_actionness'
    ]


def test_default_weights_are_the_originals():
    head = HEADS.build(
        dict(type='MultiTaskHead',
             heads=dict(
                 action_detection=dict(
                     type='ActionDetectionHead', in_channels=8,
                     num_classes=4),
                 other=dict(type='ActionDetectionHead', in_channels=8,
                            num_classes=4))))
    assert head.task_weights == dict(action_detection=0.33, other=1.0)


def test_tasks_without_labels_in_the_batch_add_connected_zeros():
    """A batch where no video has QA or caption labels: those tasks give 0
    (not NaN), every head still gets a gradient, detection is unchanged."""
    from hvlm.models.text import WordTokenizer
    torch.manual_seed(0)
    heads = dict(
        action_detection=dict(
            type='ActionDetectionHead', in_channels=8, num_classes=4),
        video_qa=dict(type='VideoQAHead', in_channels=8, num_answers=5,
                      vocab_size=16, embed_dims=8, num_layers=1,
                      num_heads=2),
        video_captioning=dict(
            type='VideoCaptioningHead', in_channels=8, vocab_size=16,
            embed_dims=8, num_layers=1, num_heads=2))
    head = HEADS.build(dict(type='MultiTaskHead', heads=heads)).eval()
    tok = WordTokenizer.train(['a b c'])
    head.heads['video_qa'].set_tokenizer(tok)
    head.heads['video_captioning'].set_tokenizer(tok)
    s = [VideoDataSample(), VideoDataSample()]
    for x in s:
        x.gt_frame_labels = torch.randint(0, 4, (10, ))
    feats = make_feats()
    losses = head.loss(feats, s)
    assert losses['loss_video_qa_answer'].item() == 0.
    assert losses['loss_video_captioning_caption'].item() == 0.
    alone = head.heads['action_detection'].loss(feats, s)['loss_cls']
    torch.testing.assert_close(losses['loss_action_detection_cls'],
                               0.33 * alone)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    for name, p in head.named_parameters():
        assert p.grad is not None, name


def test_errors():
    with pytest.raises(ValueError, match=r"unknown tasks \['c'\]"):
        build(c=1.0)
    with pytest.raises(ValueError, match='at least one task'):
        HEADS.build(dict(type='MultiTaskHead', heads={}))
