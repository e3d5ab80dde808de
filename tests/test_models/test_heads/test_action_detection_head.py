import pytest
import torch
import torch.nn.functional as F

import hvlm.models  # noqa: F401
from hvlm.structures import VideoFeatures
from hvlm.registry import HEADS
from hvlm.structures import VideoDataSample


def make_feats(num_videos=2, num_clips=2, T0=3, C=8, num_frames=5):
    """Unmerged features on a (T0, 1, 2) grid: frame_features() then
    reduces the two tokens of each time step."""
    B = num_videos * num_clips
    tokens = torch.randn(B, T0 * 2, C, requires_grad=True)
    index = torch.arange(T0 * 2).expand(B, -1)
    return VideoFeatures(tokens, torch.ones(B, T0 * 2), index, (T0, 1, 2), 2,
                         num_frames, num_clips)


def samples(labels):
    out = []
    for i, row in enumerate(labels):
        s = VideoDataSample(metainfo=dict(video_id=f'v{i}'))
        if row is not None:
            s.gt_frame_labels = row
        out.append(s)
    return out


def build(**kwargs):
    cfg = dict(type='ActionDetectionHead', in_channels=8, num_classes=4,
               dropout=0.)
    cfg.update(kwargs)
    return HEADS.build(cfg)


@pytest.mark.parametrize('pool', ['max', 'mean'])
def test_frame_logits_layout(pool):
    torch.manual_seed(0)
    head = build(spatial_pool=pool)
    feats = make_feats()
    logits = head.frame_logits(feats)  # 2 videos x 2 clips x 5 frames
    assert logits.shape == (2, 10, 4)
    per_tubelet = feats.tokens.reshape(4, 3, 2, 8)  # [B, T0, H0*W0, C]
    reduced = (per_tubelet.amax(2)
               if pool == 'max' else per_tubelet.mean(2))
    per_step = head.fc_cls(reduced)
    # video 1, clip 0, frame 3 -> clip row 2, tubelet step 3 // 2 = 1
    torch.testing.assert_close(logits[1, 3], per_step[2, 1])
    # video 0, clip 1, frame 4 (the padded tubelet's first frame)
    torch.testing.assert_close(logits[0, 5 + 4], per_step[1, 2])


def test_loss_is_cross_entropy_over_labelled_frames():
    torch.manual_seed(0)
    head = build(loss_weight=2.0, label_smoothing=0.1)
    feats = make_feats()
    labels = torch.randint(0, 4, (2, 10))
    labels[0, :4] = -1
    loss = head.loss(feats, samples(labels))['loss_cls']
    logits = head.frame_logits(feats).reshape(-1, 4)
    keep = labels.reshape(-1) != -1
    expected = 2.0 * F.cross_entropy(
        logits[keep], labels.reshape(-1)[keep], label_smoothing=0.1)
    torch.testing.assert_close(loss, expected)


def test_all_ignored_gives_connected_zero():
    head = build(label_smoothing=0.1)
    feats = make_feats()
    loss = head.loss(feats, samples([torch.full((10, ), -1), None]))
    assert loss['loss_cls'].item() == 0.0
    loss['loss_cls'].backward()
    assert head.fc_cls.weight.grad is not None
    assert torch.all(head.fc_cls.weight.grad == 0)
    assert feats.tokens.grad is not None


def test_predict_writes_scores_and_labels():
    torch.manual_seed(0)
    head = build(smooth_window=1)
    feats = make_feats()
    out = head.predict(feats, samples([None, None]))
    logits = head.frame_logits(feats)
    for i, s in enumerate(out):
        assert s.pred_frame_scores.shape == (10, 4)
        torch.testing.assert_close(s.pred_frame_scores.sum(-1),
                                   torch.ones(10))
        assert torch.equal(s.pred_frame_labels, logits[i].argmax(-1))


def test_errors():
    with pytest.raises(ValueError, match='num_classes=0'):
        build(num_classes=0)
    head = build()
    with pytest.raises(ValueError, match="'v0' has 7 gt_frame_labels.*10"):
        head.loss(make_feats(), samples([torch.zeros(7), None]))
    with pytest.raises(ValueError, match='class 4 but num_classes=4'):
        head.loss(make_feats(), samples([torch.full((10, ), 4), None]))


def test_predict_smooths_within_each_clip():
    torch.manual_seed(0)
    head = build()  # smooth_window=3
    feats = make_feats()
    out = head.predict(feats, samples([None, None]))
    raw = head.frame_logits(feats).softmax(-1).reshape(4, 5, 4)  # per clip
    act = head.actionness_logits(feats).sigmoid().reshape(4, 5)
    expected = torch.empty_like(raw)
    expected_act = torch.empty_like(act)
    for f in range(5):
        lo, hi = max(f - 1, 0), min(f + 2, 5)
        expected[:, f] = raw[:, lo:hi].mean(1)
        expected_act[:, f] = act[:, lo:hi].mean(1)
    for i, s in enumerate(out):
        torch.testing.assert_close(s.pred_frame_scores,
                                   expected[2 * i:2 * i + 2].reshape(10, 4))
        torch.testing.assert_close(s.pred_actionness,
                                   expected_act[2 * i:2 * i + 2].reshape(10))
        assert torch.equal(s.pred_frame_labels,
                           s.pred_frame_scores.argmax(-1))


def test_actionness_loss_is_bce_over_annotated_videos():
    torch.manual_seed(0)
    head = build(actionness_loss_weight=0.5)
    feats = make_feats()
    labels = torch.randint(-1, 4, (2, 10))
    s = samples(labels)
    s[0].gt_segments = torch.zeros(1, 2)  # only video 0 is annotated
    loss = head.loss(feats, s)['loss_actionness']
    logits = head.actionness_logits(feats)[0]
    expected = 0.5 * F.binary_cross_entropy_with_logits(
        logits, (labels[0] >= 0).float())
    torch.testing.assert_close(loss, expected)
    none = head.loss(feats, samples(labels))['loss_actionness']
    assert none.item() == 0.
    none.backward()
    assert torch.all(head.fc_act.weight.grad == 0)


def test_predict_decodes_segments_in_seconds():
    torch.manual_seed(0)
    head = build(smooth_window=1)
    with torch.no_grad():
        head.fc_cls.weight.zero_()
        head.fc_act.weight.zero_()
        head.fc_act.bias.fill_(5.)  # every frame is action
    feats = make_feats(num_videos=1, num_clips=1, T0=3, num_frames=5)
    head.fc_cls.bias.data = torch.tensor([0., 3., 0., 0.])
    s = samples([None])
    s[0].set_metainfo(dict(frame_times=[1.0, 1.5, 2.0, 2.5, 3.0]))
    out = head.predict(feats, s)[0]
    torch.testing.assert_close(out.pred_segments, torch.tensor([[1.0, 3.5]]))
    assert out.pred_segment_labels.tolist() == [1]
    p = torch.tensor([0., 3., 0., 0.]).softmax(-1)[1] * torch.sigmoid(
        torch.tensor(5.))
    torch.testing.assert_close(out.pred_segment_scores, p[None])


def test_new_argument_errors():
    with pytest.raises(ValueError, match='smooth_window=2'):
        build(smooth_window=2)
    with pytest.raises(ValueError, match=r'actionness_thresholds=\(1.5,\)'):
        build(actionness_thresholds=(1.5, ))
