"""SGDET: the assignment of detections to the ground truth (hand-derived
cases), the graphs STTran builds from detections in training and test,
and SceneGraphRecall on detected boxes."""
import numpy as np
import pytest
import torch

from hvlm.evaluation.metrics.scene_graph_recall import SceneGraphRecall
from hvlm.models.scene_graphs.video_graph import assign_detections
from hvlm.registry import MODELS
from hvlm.utils import register_all_modules

register_all_modules(init_default_scope=False)


def test_assignment_by_hand():
    # ground truth: person, object A (class 5), B (class 7, same place as
    # A), C (class 9, no detection near it)
    gt = np.array([[0, 0, 19, 39], [30, 0, 39, 9], [30, 0, 39, 9],
                   [50, 50, 59, 59]], float)
    labels = np.array([1, 5, 7, 9])
    det = np.array([
        [0, 0, 19, 38],  # person, IoU 39/40 (+1 pixel)
        [30, 0, 39, 9],  # A exactly: A takes it, B wants it too
        [31, 0, 39, 9],  # IoU 0.9 with A and B: B falls back to it
        [70, 70, 79, 79],  # a false positive
        [30, 0, 34, 9],  # IoU 0.5 exactly with A and B: not above 0.5
    ], float)
    matched, det_labels = assign_detections(det, gt, labels, 0.5)
    assert matched.tolist() == [0, 1, 2, -1]
    # matched detections carry their ground truth's class; the others the
    # class of the box they overlap most above 0.5, else background
    assert det_labels.tolist() == [1, 5, 7, 0, 0]
    # the reference's threshold is strict: at 0.45 the last one is A's
    _, det_labels = assign_detections(det, gt, labels, 0.45)
    assert det_labels.tolist() == [1, 5, 7, 0, 5]
    # no detection: every ground-truth box is supplied
    matched, det_labels = assign_detections(np.zeros((0, 4)), gt, labels)
    assert matched.tolist() == [-1] * 4 and len(det_labels) == 0


def _sample(H=48, W=64):
    """Two frames; frame 0: person + 2 objects, frame 1: person + 1."""
    person = torch.tensor([[2., 2., 20., 40.], [4., 2., 22., 40.]])
    obj_boxes = torch.tensor([[30., 5., 45., 20.], [40., 25., 60., 45.],
                              [32., 6., 47., 21.]])
    s = dict(
        video_id='v', img_shape=(H, W), scale_factor=(0.5, 0.5),
        person_boxes=person, obj_frames=torch.tensor([0, 0, 1]),
        obj_boxes=obj_boxes, obj_labels=torch.tensor([5, 7, 5]),
        attention=torch.tensor([0, 1, 2]),
        spatial=torch.eye(6)[[0, 1, 2]].to(torch.uint8),
        contacting=torch.eye(17)[[3, 4, 5]].to(torch.uint8))
    # detections: frame 0: person (0.9), a weaker person (0.6), object 0
    # shifted by a pixel, a false positive; object 1 missed. Frame 1:
    # no person detected, object 2 found.
    s.update(
        det_frames=torch.tensor([0, 0, 0, 0, 1]),
        det_boxes=torch.tensor([[2., 3., 20., 40.], [0., 0., 10., 10.],
                                [31., 5., 46., 20.], [5., 40., 15., 47.],
                                [32., 6., 47., 21.]]),
        det_labels=torch.tensor([1, 1, 5, 9, 5]),
        det_scores=torch.tensor([.9, .6, .8, .3, .7]))
    frames = torch.from_numpy(np.random.default_rng(0).integers(
        0, 255, (2, 3, H // 2, W // 2), dtype=np.uint8))
    return frames, s


def _model(**kw):
    torch.manual_seed(0)
    return MODELS.build(dict(
        type='STTran', mode='sgdet', hidden_dim=32, num_heads=4,
        spatial_layer=1, temporal_layer=1, embed_dim=8, roi_size=3,
        mask_size=12, dropout=0.0,
        backbone=dict(type='SmallConvNet', channels=(8, 16)), **kw))


def test_sgdet_training_graph_follows_the_assignment():
    frames, s = _sample()
    model = _model()
    g = model._layout([s], [0], 'cpu', train=True)
    # frame 0: 4 detections + object 1 supplied; frame 1: 1 detection +
    # the person supplied
    assert g['boxes'].shape == (7, 4)
    torch.testing.assert_close(g['orig_boxes'][4], s['obj_boxes'][1])
    torch.testing.assert_close(g['orig_boxes'][6], s['person_boxes'][1])
    assert g['labels'].tolist() == [1, 0, 5, 0, 7, 5, 1]
    assert g['is_person'].tolist() == [True] + [False] * 5 + [True]
    # pairs: (matched person, matched object 0), (person, supplied 1),
    # (supplied person of frame 1, detection of object 2)
    assert torch.stack([g['subj'], g['obj']], 1).tolist() == [
        [0, 2], [0, 4], [6, 5]]
    assert g['attention'].tolist() == [0, 1, 2]
    assert g['contacting'].argmax(1).tolist() == [3, 4, 5]
    losses = model([frames], [s], mode='loss')
    assert set(losses) == {'loss_attention', 'loss_spatial',
                           'loss_contacting', 'loss_object'}
    sum(losses.values()).backward()
    assert model.obj_classifier[0].weight.grad is not None


def test_sgdet_prediction_reads_no_ground_truth():
    frames, s = _sample()
    model = _model().eval()
    out = model([frames], [s], mode='predict')[0]
    # frame 0 only (frame 1 has no person detection): the best person and
    # the two non-person detections
    torch.testing.assert_close(out['pred_boxes'], s['det_boxes'][[0, 2, 3]])
    assert out['pred_box_frames'].tolist() == [0, 0, 0]
    assert out['pred_pairs'].tolist() == [[0, 1], [0, 2]]
    assert out['pred_labels'][0] == 1 and (out['pred_labels'][1:] >= 2).all()
    assert abs(float(out['pred_scores'][0]) - 0.9) < 1e-6
    # changing the ground truth changes nothing
    moved = dict(s, person_boxes=s['person_boxes'] + 5,
                 obj_boxes=s['obj_boxes'] * 0.5,
                 obj_labels=s['obj_labels'] + 1)
    again = model([frames], [moved], mode='predict')[0]
    for k in ('pred_boxes', 'pred_labels', 'pred_scores', 'pred_contacting'):
        torch.testing.assert_close(again[k], out[k])


def test_recall_on_detected_boxes():
    """Detected boxes are matched to the ground truth at IoU >= 0.5."""
    frames, s = _sample()
    metric = SceneGraphRecall(ks=(20, ), constraints=('with', ))
    pred = dict(
        s, pred_boxes=s['det_boxes'][[0, 2, 3]], pred_box_frames=torch.zeros(
            3, dtype=torch.long), pred_labels=torch.tensor([1, 5, 9]),
        pred_scores=torch.ones(3), pred_pairs=torch.tensor([[0, 1], [0, 2]]),
        pred_attention=torch.eye(3)[[0, 1]],
        pred_spatial=torch.eye(6)[[0, 1]].float(),
        pred_contacting=torch.eye(17)[[3, 4]].float())
    metric.process(None, [pred])
    r = metric.evaluate(1)['sg/with_R@20']
    # frame 0: object 0's three triplets found (its detection overlaps with
    # IoU > 0.5), object 1's three missed: 1/2; frame 1: nothing: 0
    assert abs(r - 0.25) < 1e-9
    # object 0's detection moved 8 px right: IoU 112/400 < 0.5
    far = dict(pred, pred_boxes=pred['pred_boxes'] + torch.tensor(
        [[0., 0, 0, 0], [8, 0, 8, 0], [0, 0, 0, 0]]))
    metric.process(None, [far])
    assert metric.evaluate(1)['sg/with_R@20'] == 0.0


def test_detector_features_reach_their_nodes():
    frames, s = _sample()
    feats = torch.arange(5 * 4, dtype=torch.float32).view(5, 4)
    s = dict(s, det_features=feats)
    model = _model(det_feature_dim=4)
    g = model._layout([s], [0], 'cpu', train=True)
    # detections keep their own rows; supplied boxes (4: object 1, 6: the
    # person of frame 1) get zeros
    want = torch.zeros(7, 4)
    want[[0, 1, 2, 3, 5]] = feats
    torch.testing.assert_close(g['features'], want)
    sum(model([frames], [s], mode='loss').values()).backward()
    assert model.det_feature_fc.weight.grad.abs().sum() > 0
    model.eval()
    test = model._layout([s], [0], 'cpu', train=False)
    torch.testing.assert_close(test['features'], feats[[0, 2, 3]])
    a = model([frames], [s], mode='predict')[0]['pred_contacting']
    b = model([frames], [dict(s, det_features=feats * 2)],
              mode='predict')[0]['pred_contacting']
    assert not torch.allclose(a, b)


def _temporal_model(typ):
    torch.manual_seed(0)
    extra = dict(num_mixtures=2) if typ == 'TEMPURA' else {}
    model = MODELS.build(dict(
        type=typ, mode='sgdet', hidden_dim=32, num_heads=4,
        spatial_layer=1, temporal_layer=1, temporal_window=2, embed_dim=8,
        roi_size=3, mask_size=12, dropout=0.0,
        backbone=dict(type='SmallConvNet', channels=(8, 16)), **extra))
    if typ == 'STKET':
        from hvlm.datasets import count_scene_priors
        from tests.test_models.test_scene_graphs.test_stket import \
            _tiny_annotation
        model.set_priors(count_scene_priors([_tiny_annotation()], 37))
    return model


def _reordered(s):
    """The same annotation listing its objects in another order (frame 1's
    object first): the graph, and so every loss, must not change."""
    order = torch.tensor([2, 0, 1])
    return dict(s, **{k: s[k][order] for k in (
        'obj_frames', 'obj_boxes', 'obj_labels', 'attention', 'spatial',
        'contacting')})


@pytest.mark.parametrize('typ', ['STKET', 'TEMPURA'])
def test_temporal_models_train_and_predict_in_sgdet(typ):
    frames, s = _sample()
    model = _temporal_model(typ)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)  # TEMPURA's loss draws noise
    losses = model([frames], [s], mode='loss')
    assert 'loss_object' in losses
    if typ == 'STKET':
        assert {f'loss_{st}_stage_contacting'
                for st in ('spatial', 'temporal')} <= set(losses)
    sum(losses.values()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None]
    assert not no_grad, no_grad
    after = {k: v.clone() for k, v in model.state_dict().items()}

    # the same ground truth listed in another order: same graph, losses
    # and (TEMPURA) prototype memory, so the targets follow the pairs
    model.load_state_dict(before)
    torch.manual_seed(1)
    again = model([frames], [_reordered(s)], mode='loss')
    for k in losses:
        torch.testing.assert_close(again[k], losses[k], msg=k)
    if typ == 'TEMPURA':
        # the memory learnt the assigned pairs' predicates: attention
        # 0-2, spatial above/beneath/in_front_of, contacting 3-5
        assert torch.nonzero(after['prototype_filled']).flatten().tolist(
        ) == [0, 1, 2, 3, 4, 5, 12, 13, 14]
        torch.testing.assert_close(model.prototypes, after['prototypes'])

    # prediction: the detections' pairs, no ground truth read
    model.eval()
    out = model([frames], [s], mode='predict')[0]
    torch.testing.assert_close(out['pred_boxes'], s['det_boxes'][[0, 2, 3]])
    assert out['pred_pairs'].tolist() == [[0, 1], [0, 2]]
    assert (out['pred_labels'][1:] >= 2).all()
    moved = dict(_reordered(s), person_boxes=s['person_boxes'] + 5,
                 obj_labels=s['obj_labels'] + 1,
                 contacting=1 - s['contacting'])
    again = model([frames], [moved], mode='predict')[0]
    for k in ('pred_labels', 'pred_scores', 'pred_attention',
              'pred_spatial', 'pred_contacting'):
        torch.testing.assert_close(again[k], out[k], msg=k)
