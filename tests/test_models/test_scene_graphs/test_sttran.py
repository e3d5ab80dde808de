"""STTran built from the registry on hand-made videos: losses, the
prediction contract, batching, the sliding window; RelationHead; the
frequency baseline's counts."""
import numpy as np
import pytest
import torch

from hvlm.models.scene_graphs import FrequencyBaseline
from hvlm.models.scene_graphs.sttran import _box_masks
from hvlm.registry import HEADS, MODELS
from hvlm.utils import register_all_modules

register_all_modules(init_default_scope=False)


def _video(rng, T, M_per_frame=2, H=48, W=64):
    obj_frames = np.repeat(np.arange(T), M_per_frame)
    M = len(obj_frames)
    xy = rng.uniform(0, 40, (M, 2))
    obj_boxes = np.concatenate([xy, xy + rng.uniform(8, 20, (M, 2))], 1)
    person = np.tile([[10., 5., 30., 45.]], (T, 1)) + rng.normal(0, 1, (T, 4))
    spatial = (rng.random((M, 6)) < .3).astype(np.uint8)
    contacting = (rng.random((M, 17)) < .2).astype(np.uint8)
    sample = dict(
        video_id=f'v{T}', img_shape=(H, W), scale_factor=(0.5, 0.5),
        person_boxes=torch.tensor(person, dtype=torch.float32),
        obj_frames=torch.from_numpy(obj_frames),
        obj_boxes=torch.tensor(obj_boxes, dtype=torch.float32),
        obj_labels=torch.from_numpy(rng.integers(2, 37, M)),
        attention=torch.from_numpy(rng.integers(0, 3, M)),
        spatial=torch.from_numpy(spatial),
        contacting=torch.from_numpy(contacting))
    frames = torch.from_numpy(rng.integers(0, 255, (T, 3, H // 2, W // 2),
                                           dtype=np.uint8))
    return frames, sample


def _model(mode='predcls', window=2, geometry=False):
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='STTran', mode=mode, hidden_dim=32, box_geometry=geometry,
        num_heads=4, spatial_layer=1, temporal_layer=2, temporal_window=window,
        embed_dim=8, roi_size=3, mask_size=12, dropout=0.0,
        backbone=dict(type='SmallConvNet', channels=(8, 16))))


def test_loss_backward_and_prediction_contract():
    rng = np.random.default_rng(0)
    videos = [_video(rng, 3), _video(rng, 4, 1)]
    model = _model(geometry=True)
    inputs = [v[0] for v in videos]
    samples = [v[1] for v in videos]
    losses = model(inputs, samples, mode='loss')
    assert set(losses) == {'loss_attention', 'loss_spatial',
                           'loss_contacting'}
    sum(losses.values()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, no_grad
    model.eval()
    out = model(inputs, samples, mode='predict')
    for (frames, s), o in zip(videos, out):
        T, M = len(s['person_boxes']), len(s['obj_boxes'])
        # predcls: the given boxes (original pixels) and labels
        torch.testing.assert_close(o['pred_boxes'],
                                   torch.cat([s['person_boxes'],
                                              s['obj_boxes']]))
        assert o['pred_labels'][:T].eq(1).all()
        assert torch.equal(o['pred_labels'][T:], s['obj_labels'])
        # each pair: the person of the object's own frame
        pairs = o['pred_pairs']
        assert pairs.shape == (M, 2)
        assert torch.equal(o['pred_box_frames'][pairs[:, 0]],
                           s['obj_frames'])
        assert torch.equal(pairs[:, 1], torch.arange(T, T + M))
        torch.testing.assert_close(o['pred_attention'].sum(1),
                                   torch.ones(M))
        assert o['pred_spatial'].shape == (M, 6)
        assert ((o['pred_contacting'] > 0) & (o['pred_contacting'] < 1)
                ).all()
    # a batch of two videos predicts what each video predicts alone
    alone = model([inputs[1]], [samples[1]], mode='predict')[0]
    torch.testing.assert_close(alone['pred_spatial'], out[1]['pred_spatial'])
    torch.testing.assert_close(alone['pred_attention'],
                               out[1]['pred_attention'])


def test_sliding_window_bounds_what_a_frame_sees():
    rng = np.random.default_rng(1)
    frames, s = _video(rng, 4)
    model = _model(window=2).eval()
    base = model([frames], [s], mode='predict')[0]['pred_contacting']
    changed = frames.clone()
    changed[2] = 255 - changed[2]  # frame 2 only
    new = model([changed], [s], mode='predict')[0]['pred_contacting']
    of = s['obj_frames']
    # frame 0 sits only in window (0, 1); frames 1-3 see frame 2
    torch.testing.assert_close(new[of == 0], base[of == 0])
    for t in (1, 2, 3):
        assert not torch.allclose(new[of == t], base[of == t]), t


def test_sgcls_predicts_object_classes():
    rng = np.random.default_rng(2)
    frames, s = _video(rng, 3)
    model = _model('sgcls')
    losses = model([frames], [s], mode='loss')
    assert torch.isfinite(losses['loss_object'])
    model.eval()
    o = model([frames], [s], mode='predict')[0]
    T = len(s['person_boxes'])
    assert o['pred_labels'][:T].eq(1).all()
    assert (o['pred_labels'][T:] >= 2).all()
    assert (o['pred_scores'][T:] < 1).all()
    with pytest.raises(ValueError, match="mode='detect'"):
        _model('detect')


def test_box_geometry_sees_where_the_pair_is():
    rng = np.random.default_rng(3)
    frames, s = _video(rng, 2)
    moved = dict(s, person_boxes=s['person_boxes'] + 3,
                 obj_boxes=s['obj_boxes'] + 3)
    model = _model(geometry=True).eval()
    flat = torch.full_like(frames, 100)
    a = model([flat], [s], mode='predict')[0]['pred_spatial']
    b = model([flat], [moved], mode='predict')[0]['pred_spatial']
    # with the geometry embedding zeroed, only the RoI pooling (edge
    # effects of the convolutions) sees the shift
    torch.nn.init.zeros_(model.geometry_fc.weight)
    c = model([flat], [s], mode='predict')[0]['pred_spatial']
    d = model([flat], [moved], mode='predict')[0]['pred_spatial']
    assert (b - a).abs().max() > 10 * (d - c).abs().max()
    assert _model().geometry_fc is None


def test_box_masks_and_relation_head():
    union = torch.tensor([[0., 0., 8., 4.]])
    masks = _box_masks(torch.tensor([[0., 0., 4., 4.]]),
                       torch.tensor([[6., 2., 8., 4.]]), union, 8)
    # sample centres at (i + .5) / 8 of the union's width / height
    assert masks[0, 0, :, :4].eq(1).all() and masks[0, 0, :, 4:].eq(0).all()
    assert masks[0, 1, 4:, 6:].eq(1).all() and masks[0, 1, :4].eq(0).all()
    head = HEADS.build(dict(type='RelationHead', in_channels=4))
    x = torch.randn(5, 4)
    a, s, c = head.predict(x)
    la, ls, lc = head(x)
    torch.testing.assert_close(a, la.softmax(-1))
    att = torch.tensor([0, 1, 2, 0, 1])
    spa = (torch.rand(5, 6) < .5).float()
    con = (torch.rand(5, 17) < .5).float()
    losses = head.loss(x, att, spa, con)
    want = -(la.log_softmax(-1)[torch.arange(5), att]).mean()
    torch.testing.assert_close(losses['loss_attention'], want)
    p = ls.sigmoid()
    want = -(spa * p.log() + (1 - spa) * (1 - p).log()).mean()
    torch.testing.assert_close(losses['loss_spatial'], want)


def test_other_predicate_groups_and_sizes_that_do_not_fit():
    # EASG's layout: verbs single-label, no spatial group, relations
    head = HEADS.build(dict(type='RelationHead', in_channels=4,
                            num_attention=5, num_spatial=0,
                            num_contacting=2))
    x = torch.randn(3, 4)
    att, con = torch.tensor([0, 4, 2]), torch.tensor([[1., 0], [0, 1],
                                                      [1, 1]])
    losses = head.loss(x, att, torch.zeros(3, 0), con)
    assert set(losses) == {'loss_attention', 'loss_contacting'}
    la, ls, lc = head(x)
    assert ls.shape == (3, 0)
    p = lc.sigmoid()
    want = -(con * p.log() + (1 - con) * (1 - p).log()).mean()
    torch.testing.assert_close(losses['loss_contacting'], want)
    with pytest.raises(ValueError, match='num_attention'):
        head.loss(x, torch.tensor([0, 5, 2]), torch.zeros(3, 0), con)
    with pytest.raises(ValueError, match='num_contacting'):
        head.loss(x, att, torch.zeros(3, 0), torch.zeros(3, 17))
    rng = np.random.default_rng(0)
    frames, sample = _video(rng, 2)
    model = MODELS.build(dict(
        type='STTran', num_classes=10, hidden_dim=32, num_heads=4,
        temporal_layer=1, embed_dim=8, roi_size=3, mask_size=12,
        backbone=dict(type='SmallConvNet', channels=(8, 16))))
    sample['obj_labels'][0] = 12
    with pytest.raises(ValueError, match='num_classes=10'):
        model([frames], [sample], mode='loss')


def test_frequency_baseline_counts():
    train = [dict(obj_labels=np.array([5, 5, 7]), attention=np.array([0, 1,
                                                                      1]),
                  spatial=np.eye(6, dtype=np.uint8)[[2, 2, 3]],
                  contacting=np.eye(17, dtype=np.uint8)[[8, 5, 8]])]
    model = FrequencyBaseline(smoothing=0.0).fit(train)
    p = model.probabilities()
    np.testing.assert_allclose(p['attention'][5], [.5, .5, 0])
    np.testing.assert_allclose(p['spatial'][5], [0, 0, 1, 0, 0, 0])
    np.testing.assert_allclose(p['contacting'][5][[5, 8]], [.5, .5])
    # an unseen class gets the overall frequencies
    np.testing.assert_allclose(p['attention'][9], [1 / 3, 2 / 3, 0])
    test = dict(person_boxes=np.array([[0, 0, 5, 5.]]),
                obj_frames=np.array([0]), obj_boxes=np.array([[1, 1, 3, 3.]]),
                obj_labels=np.array([7]))
    out = model.predict([test])[0]
    np.testing.assert_allclose(out['pred_attention'][0], [0, 1, 0])
    assert out['pred_pairs'].tolist() == [[0, 1]]


@pytest.mark.parametrize('config, per_frame', [
    ('sttran_predcls_demo_perframe.py', True),
    ('sttran_predcls_demo.py', False),
    ('sttran_predcls_demo_motion.py', False)])
def test_the_per_frame_config_sees_one_frame(config, per_frame):
    """The per-frame control of the temporal models: changing frame 2 (its
    pixels and its objects' boxes) leaves frames 0 and 1's scores alone;
    the temporal STTran's change."""
    from pathlib import Path

    from mmengine.config import Config
    cfg = Config.fromfile(str(Path(__file__).parents[3] / 'configs' /
                              'scene_graph' / config))
    cfg.model.update(hidden_dim=32, num_heads=4, embed_dim=8, roi_size=3,
                     mask_size=12, backbone=dict(type='SmallConvNet',
                                                 channels=(8, 16)))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).eval()
    frames, sample = _video(np.random.default_rng(3), 3)
    out = model([frames], [sample], mode='predict')[0]
    moved = dict(sample, obj_boxes=sample['obj_boxes'].clone())
    last = sample['obj_frames'] == 2
    moved['obj_boxes'][last] += 3
    frames2 = frames.clone()
    frames2[2] = 255 - frames2[2]
    again = model([frames2], [moved], mode='predict')[0]
    early = ~last
    for k in ('pred_attention', 'pred_spatial', 'pred_contacting'):
        same = torch.allclose(out[k][early], again[k][early], atol=1e-6)
        assert same == per_frame, k
