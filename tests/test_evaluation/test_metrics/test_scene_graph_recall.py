"""SceneGraphRecall on hand-derived frames, and against a straightforward
per-frame re-implementation that follows the reference evaluator's steps
(zero-padded 26-wide score rows, reversed spatial rows, pred_to_gt lists)."""
from functools import reduce

import numpy as np
import pytest
import torch

from hvlm.registry import METRICS


def _build(**kw):
    return METRICS.build(dict(type='SceneGraphRecall', **kw))


def _video(person, objs, preds, frames=None):
    """GT from ``objs`` [(frame, box, label, att, [spa], [con])] and
    predictions: GT boxes (predcls), scores 1, the given score rows."""
    T = len(person)
    obj_frames = np.array([o[0] for o in objs])
    spatial = np.zeros((len(objs), 6), np.uint8)
    contacting = np.zeros((len(objs), 17), np.uint8)
    for m, o in enumerate(objs):
        spatial[m, o[4]] = 1
        contacting[m, o[5]] = 1
    boxes = np.concatenate([np.asarray(person, float),
                            np.array([o[1] for o in objs], float)])
    box_frames = np.concatenate([np.arange(T), obj_frames])
    labels = np.concatenate([np.ones(T, int), [o[2] for o in objs]])
    pairs = np.stack([obj_frames, T + np.arange(len(objs))], 1)
    att, spa, con = (np.asarray(a, np.float32) for a in preds)
    return dict(
        person_boxes=torch.tensor(person, dtype=torch.float32),
        obj_frames=torch.from_numpy(obj_frames),
        obj_boxes=torch.tensor([o[1] for o in objs], dtype=torch.float32),
        obj_labels=torch.tensor([o[2] for o in objs]),
        attention=torch.tensor([o[3] for o in objs]),
        spatial=torch.from_numpy(spatial),
        contacting=torch.from_numpy(contacting),
        pred_boxes=torch.from_numpy(boxes).float(),
        pred_box_frames=torch.from_numpy(box_frames),
        pred_labels=torch.from_numpy(labels),
        pred_scores=torch.ones(len(boxes)),
        pred_pairs=torch.from_numpy(pairs),
        pred_attention=torch.from_numpy(att),
        pred_spatial=torch.from_numpy(spa),
        pred_contacting=torch.from_numpy(con))


def _onehot(n, i, v=0.95, rest=0.01):
    a = np.full(n, rest)
    a[i] = v
    return a


def test_hand_derived_frame(monkeypatch):
    from hvlm.evaluation.metrics import scene_graph_recall
    logs = []
    monkeypatch.setattr(scene_graph_recall, 'print_log',
                        lambda msg, **kw: logs.append(msg))
    # one frame, one object (cup=11): GT looking_at(0), in_front_of(5) and
    # on_the_side_of(7) [spatial 2, 4], holding(14) [contacting 5]: 4 triplets
    person = [[10, 10, 50, 90]]
    objs = [(0, [40, 40, 60, 60], 11, 0, [2, 4], [5])]
    att = [_onehot(3, 0, 0.8, 0.1)]
    spa = [_onehot(6, 2, 0.97, 0.0) + _onehot(6, 4, 0.92, 0.0)]
    con = [_onehot(17, 5, 0.5, 0.0)]
    metric = _build(ks=(1, 2, 3, 20))
    metric.process(None, [_video(person, objs, (att, spa, con))])
    r = metric.evaluate(1)
    # with: 3 triplets scored .8, .97 (in_front_of), .5 (holding): ranks
    # spatial 0, attention 1, contacting 2; on_the_side_of never predicted
    assert r['sg/with_R@1'] == pytest.approx(1 / 4)
    assert r['sg/with_R@2'] == pytest.approx(2 / 4)
    assert r['sg/with_R@3'] == pytest.approx(3 / 4)
    # semi: both spatial (> .9) predicted, holding (.5) is not
    assert r['sg/semi_R@20'] == pytest.approx(3 / 4)
    # no constraint: all 26 predicates: everything matched within 20
    assert r['sg/no_R@20'] == pytest.approx(1.0)
    # mR@3 with: looking_at 1, in_front_of 1, on_the_side_of 0, holding 1
    assert r['sg/with_mR@3'] == pytest.approx(3 / 4)
    assert metric.per_predicate['with_R@3']['on_the_side_of'] == 0.0
    # the logged table: one row per predicate present, a column per
    # constraint at the table's K (20)
    row = [line for line in logs[-1].splitlines()
           if line.startswith('holding')][0]
    assert row.split() == ['holding', '1', '1.0000', '0.0000', '1.0000']


def test_reversed_spatial_plus1_iou_and_frame_averaging():
    # frame 0: all matched; frame 1: a wrong spatial predicate
    person = [[0, 0, 9, 9], [0, 0, 9, 9]]
    objs = [(0, [20, 0, 29, 9], 11, 1, [0], [8]),
            (1, [20, 0, 29, 9], 11, 1, [1], [8])]
    preds = ([_onehot(3, 1)] * 2,
             [_onehot(6, 0), _onehot(6, 3)],
             [_onehot(17, 8)] * 2)
    v = _video(person, objs, preds)
    pb = v['pred_boxes'].clone()
    # subject/person box of frame 0 shifted: [0,0,9,9] vs [0,0,14,9]:
    # +1 areas 100 and 150, inter 100 -> IoU 100/150 = .667 (kept)
    pb[0] = torch.tensor([0., 0., 14., 9.])
    v['pred_boxes'] = pb
    metric = _build(ks=(10, ), constraints=('with', ))
    metric.process(None, [v])
    r = metric.evaluate(1)
    # frame 0: 3/3 (spatial 'above' reversed: (cup, above, person));
    # frame 1: 2/3; mean over frames = (1 + 2/3) / 2
    assert r['sg/with_R@10'] == pytest.approx((1 + 2 / 3) / 2)
    # a person box with IoU just below .5 under +1: [0,0,19,9]: areas 100,
    # 200, inter 100 -> .5 (kept); [0,0,20,9]: 100/210 < .5 (lost)
    for x2, kept in ((19., True), (20., False)):
        pb = v['pred_boxes'].clone()
        pb[0] = torch.tensor([0., 0., x2, 9.])
        metric = _build(ks=(10, ), constraints=('with', ))
        metric.process(None, [dict(v, pred_boxes=pb)])
        r = metric.evaluate(1)
        want = ((1 if kept else 0) + 2 / 3) / 2
        assert r['sg/with_R@10'] == pytest.approx(want), x2


def _reference_recall(video, constraint, ks, thr=0.9):
    """Per frame, as lib/evaluation_recall.py does it."""
    g = {k: v.numpy() for k, v in video.items()}
    out = {k: [] for k in ks}
    hits = {k: np.zeros(26) for k in ks}
    counts = np.zeros(26)
    for t in range(len(g['person_boxes'])):
        m = np.nonzero(g['obj_frames'] == t)[0]
        gt_boxes = [g['person_boxes'][t]] + [g['obj_boxes'][i] for i in m]
        gt_classes = [1] + [g['obj_labels'][i] for i in m]
        gt_rels = []
        for j, i in enumerate(m):
            gt_rels.append([0, j + 1, g['attention'][i]])
            for s in np.nonzero(g['spatial'][i])[0]:
                gt_rels.append([j + 1, 0, 3 + s])
            for c in np.nonzero(g['contacting'][i])[0]:
                gt_rels.append([0, j + 1, 9 + c])
        gt_rels = np.array(gt_rels)
        sel = g['pred_box_frames'][g['pred_pairs'][:, 0]] == t
        pair = g['pred_pairs'][sel]
        P = len(pair)
        rels_i = np.concatenate([pair, pair[:, ::-1], pair])
        z = lambda n: np.zeros((P, n))  # noqa: E731
        rel_scores = np.concatenate([
            np.concatenate([g['pred_attention'][sel], z(6), z(17)], 1),
            np.concatenate([z(3), g['pred_spatial'][sel], z(17)], 1),
            np.concatenate([z(3), z(6), g['pred_contacting'][sel]], 1)])
        obj_scores = g['pred_scores']
        if constraint == 'semi':
            pred_rels, pscores = [], []
            for i, j in enumerate(rels_i):
                if rel_scores[i, 0] + rel_scores[i, 1] > 0:
                    pred_rels.append(np.append(j, rel_scores[i].argmax()))
                    pscores.append(rel_scores[i].max())
                else:
                    for k in np.where(rel_scores[i] > thr)[0]:
                        pred_rels.append(np.append(j, k))
                        pscores.append(rel_scores[i, k])
            pred_rels, pscores = np.array(pred_rels), np.array(pscores)
        elif constraint == 'no':
            overall = obj_scores[rels_i].prod(1)[:, None] * rel_scores
            flat = np.argsort(-overall.ravel(), kind='stable')[:100]
            r_i, c_i = np.unravel_index(flat, overall.shape)
            pred_rels = np.column_stack((rels_i[r_i], c_i))
            pscores = rel_scores[r_i, c_i]
        else:
            pred_rels = np.column_stack((rels_i, rel_scores.argmax(1)))
            pscores = rel_scores.max(1)
        pred_to_gt = []
        if len(pred_rels):
            tot = obj_scores[pred_rels[:, 0]] * obj_scores[pred_rels[:, 1]] \
                * pscores
            order = np.argsort(-tot, kind='stable')
            pred_rels = pred_rels[order]
            for s_i, o_i, p in pred_rels:
                matched = []
                for gi, (gs, go, gp) in enumerate(gt_rels):
                    if (gt_classes[gs], gp, gt_classes[go]) != (
                            g['pred_labels'][s_i], p, g['pred_labels'][o_i]):
                        continue
                    ious = []
                    for a, b in ((gt_boxes[gs], g['pred_boxes'][s_i]),
                                 (gt_boxes[go], g['pred_boxes'][o_i])):
                        iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
                        ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
                        inter = max(iw, 0) * max(ih, 0)
                        area = lambda q: (q[2] - q[0] + 1) * (q[3] - q[1] + 1)  # noqa
                        ious.append(inter / (area(a) + area(b) - inter))
                    if min(ious) >= 0.5:
                        matched.append(gi)
                pred_to_gt.append(matched)
        for k in ks:
            match = reduce(np.union1d, pred_to_gt[:k], np.array([]))
            out[k].append(len(match) / len(gt_rels))
            for gi in match.astype(int):
                hits[k][gt_rels[gi, 2]] += 1
        for row in gt_rels:
            counts[row[2]] += 1
    return out, hits, counts


@pytest.mark.parametrize('constraint', ['with', 'semi', 'no'])
def test_matches_reference_steps_on_random_videos(constraint):
    rng = np.random.default_rng(3)
    metric = _build(constraints=(constraint, ), ks=(5, 10, 20, 50, 100))
    want = {k: [] for k in metric.ks}
    hits = {k: np.zeros(26) for k in metric.ks}
    counts = np.zeros(26)
    for _ in range(4):
        T = int(rng.integers(1, 5))
        person = [[*rng.uniform(0, 20, 2), *rng.uniform(40, 60, 2)]
                  for _ in range(T)]
        objs = []
        for t in range(T):
            for _ in range(int(rng.integers(1, 5))):
                x, y = rng.uniform(0, 50, 2)
                objs.append((t, [x, y, x + rng.uniform(6, 30),
                                 y + rng.uniform(6, 30)],
                             int(rng.integers(2, 6)), int(rng.integers(3)),
                             list(np.nonzero(rng.random(6) < .3)[0]),
                             list(np.nonzero(rng.random(17) < .15)[0])))
        n = len(objs)
        v = _video(person, objs, (np.zeros((n, 3)), np.zeros((n, 6)),
                                  np.zeros((n, 17))))
        # noisy copies of the truth: partly right, partly wrong
        att = rng.dirichlet(np.ones(3), n) + np.eye(3)[v['attention']]
        v['pred_attention'] = torch.from_numpy(att / att.sum(1, keepdims=True))
        for key, width in (('spatial', 6), ('contacting', 17)):
            v['pred_' + key] = torch.from_numpy(
                0.5 * v[key].numpy() + 0.55 * rng.random((n, width)))
        # jitter boxes, relabel some and lower some scores, so that
        # matching and ranking both matter
        v['pred_boxes'] = v['pred_boxes'] + torch.from_numpy(
            rng.normal(0, 1.5, tuple(v['pred_boxes'].shape))).float()
        flip = torch.from_numpy(rng.random(len(v['pred_labels'])) < .1)
        v['pred_labels'] = torch.where(flip & (v['pred_labels'] > 1),
                                       v['pred_labels'] + 1, v['pred_labels'])
        v['pred_scores'] = torch.from_numpy(
            rng.uniform(0.3, 1, len(v['pred_labels']))).float()
        metric.process(None, [v])
        ref = {k: val.double() if val.is_floating_point() else val
               for k, val in v.items()}
        out, h, c = _reference_recall(
            {k: val.float().double() if val.is_floating_point() else val
             for k, val in ref.items()}, constraint, metric.ks)
        for k in metric.ks:
            want[k] += out[k]
            hits[k] += h[k]
        counts += c
    snapshot = list(metric.results)
    got = metric.evaluate(4)
    for k in metric.ks:
        assert got[f'sg/{constraint}_R@{k}'] == pytest.approx(
            np.mean(want[k]), abs=1e-9), k
        present = counts > 0
        assert got[f'sg/{constraint}_mR@{k}'] == pytest.approx(
            np.mean(hits[k][present] / counts[present]), abs=1e-9), k
    # state is reset: a second evaluation of the same results is identical
    assert metric.results == []
    metric.results.extend(snapshot)
    assert metric.evaluate(4) == got


def test_scores_are_not_modified():
    person = [[10, 10, 50, 90]]
    objs = [(0, [40, 40, 60, 60], 11, 0, [2], [5])]
    v = _video(person, objs, ([[2.0, 1.0, 0.5]], [_onehot(6, 2)],
                              [_onehot(17, 5)]))
    before = {k: t.clone() for k, t in v.items()}
    metric = _build()
    metric.process(None, [v])
    metric.evaluate(1)
    for k, t in v.items():
        assert torch.equal(t, before[k]), k
    with pytest.raises(ValueError, match="'maybe'"):
        _build(constraints=('maybe', ))
