import numpy as np
import pytest
import torch

import hvlm.evaluation  # noqa: F401
from hvlm.evaluation.metrics.average_precision import (interpolated_ap,
                                                       ranked_ap)
from hvlm.registry import METRICS


def test_interpolated_ap_by_hand():
    # precision 1, 1, 2/3, 3/4 at recall 1/3, 2/3, 2/3, 1 -> made
    # monotone: 1, 1, 3/4, 3/4 -> AP = 1/3 + 1/3 + 1/3 * 3/4
    assert interpolated_ap(torch.tensor([1, 1, 0, 1]), 3) == \
        pytest.approx(11 / 12)
    # missed ground truth caps recall: 1 TP of 2 positives
    assert interpolated_ap(torch.tensor([0, 1]), 2) == pytest.approx(0.25)
    with pytest.raises(ValueError, match='num_positives=0'):
        interpolated_ap(torch.tensor([1]), 0)


def test_ranked_ap_by_hand():
    # ranking f0(+) f2(-) f1(+) f3(-): precision 1 and 2/3 at the positives
    scores = torch.tensor([.9, .2, .8, .1])
    assert ranked_ap(scores, torch.tensor([1, 1, 0, 0]).bool()) == \
        pytest.approx(5 / 6)


def video(gt, gt_labels, pred, pred_labels, pred_scores, **extra):
    return dict(gt_segments=torch.tensor(gt).reshape(-1, 2),
                gt_segment_labels=torch.tensor(gt_labels),
                pred_segments=torch.tensor(pred).reshape(-1, 2),
                pred_segment_labels=torch.tensor(pred_labels),
                pred_segment_scores=torch.tensor(pred_scores), **extra)


def run(samples, **kwargs):
    metric = METRICS.build(
        dict(type='TemporalActionDetectionMetric', **kwargs))
    metric.dataset_meta = {}
    metric.process(None, samples)
    return metric.evaluate(len(samples))


def test_map_follows_activitynet_matching():
    samples = [
        video([[0., 10.], [20., 30.]], [0, 1], [[0., 10.], [20., 30.]],
              [0, 1], [.9, .5]),
        video([[0., 5.], [10., 20.]], [0, 0],
              [[0., 4.], [0., 5.], [12., 20.], [0., 3.]], [0, 0, 0, 2],
              [.8, .7, .6, .99]),
        dict(video_id='no actions'),
    ]
    out = run(samples, tiou_thresholds=(0.5, 0.9), observed_only=False)
    # class 0 at 0.5: TP TP FP(gt already matched) TP -> 11/12; class 1: 1;
    # class 2 has no ground truth and is not averaged.
    assert out['detection/mAP@0.5'] == pytest.approx((11 / 12 + 1) / 2)
    # at 0.9: TP FP TP FP over 3 gt: precision 1, 1/2, 2/3, 1/2 ->
    # AP = 1/3 * 1 + 1/3 * 2/3 = 5/9
    assert out['detection/mAP@0.9'] == pytest.approx((5 / 9 + 1) / 2)
    assert out['detection/mAP'] == pytest.approx(
        ((11 / 12 + 1) / 2 + (5 / 9 + 1) / 2) / 2)
    assert out['detection/num_gt'] == 4


# numpy's default argsort (what the ActivityNet kit ranks with) keeps two
# equal floats in input order here, so ``argsort()[::-1]`` puts the later
# one first; the expected numbers below are derived for that order, and
# for the other one should a numpy ever sort two items differently.
LATER_FIRST = bool(np.argsort(np.array([.5, .5]))[::-1][0] == 1)


def test_tied_scores_rank_as_activitynet():
    # one ground truth [10, 20]; a miss and a hit, both scored 0.5
    miss_then_hit = video([[10., 20.]], [0], [[50., 60.], [10., 20.]],
                          [0, 0], [.5, .5])
    hit_then_miss = video([[10., 20.]], [0], [[10., 20.], [50., 60.]],
                          [0, 0], [.5, .5])
    # ranked hit, miss: precision 1, 1/2 at recall 1, 1 -> AP 1.
    # ranked miss, hit: precision 0, 1/2 at recall 0, 1 -> made monotone
    # 1/2, 1/2 -> AP 1/2 (recall only rises at the hit).
    later_first, earlier_first = (1., .5) if LATER_FIRST else (.5, 1.)
    out = run([miss_then_hit], tiou_thresholds=(0.5, ),
              observed_only=False)
    assert out['detection/mAP@0.5'] == later_first
    out = run([hit_then_miss], tiou_thresholds=(0.5, ),
              observed_only=False)
    assert out['detection/mAP@0.5'] == earlier_first


def test_tied_tious_pick_ground_truth_as_activitynet():
    # Ground truths A=[0, 10] and B=[5, 15]; prediction p1=[5, 10] (0.9)
    # has tIoU 1/2 with both, p2=[0, 10] (0.8) has tIoU 1 with A and 1/3
    # with B. At threshold 0.5, p1 matches the ground truth its tied
    # tIoUs rank first: B when the later is first, then p2 matches A
    # (two TPs, AP 1); A otherwise, then p2 finds A taken and B below
    # the threshold (TP, FP: precision 1, 1/2 at recall 1/2, 1/2 -> AP
    # 1/2).
    sample = video([[0., 10.], [5., 15.]], [0, 0], [[5., 10.], [0., 10.]],
                   [0, 0], [.9, .8])
    out = run([sample], tiou_thresholds=(0.5, ), observed_only=False)
    assert out['detection/mAP@0.5'] == (1. if LATER_FIRST else .5)


def test_zero_length_segments_match_as_activitynet():
    # A zero-length prediction against a zero-length ground truth has
    # tIoU 0 / 0 = nan in the kit, which passes its "below the
    # threshold" test and is counted as a match, wherever both points are.
    sample = video([[3., 3.]], [0], [[7., 7.]], [0], [.9])
    out = run([sample], tiou_thresholds=(0.5, ), observed_only=False)
    assert out['detection/mAP@0.5'] == 1.


def reference_class_ap(gt, preds, thresholds):
    """A straightforward numpy rendering of the ActivityNet kit's
    per-class AP (``compute_average_precision_detection`` with its
    ``interpolated_prec_rec``), written from its definition for this test.

    gt: list of (video, start, end); preds: list of (video, score, start,
    end), both in input order. Returns one AP per threshold.
    """
    npos = float(len(gt))
    order = np.array([p[1] for p in preds], dtype=np.float64).argsort()[::-1]
    preds = [preds[i] for i in order]
    taken = -np.ones((len(thresholds), len(gt)))
    tp = np.zeros((len(thresholds), len(preds)))
    fp = np.zeros((len(thresholds), len(preds)))
    for i, (video, _, start, end) in enumerate(preds):
        rows = [g for g in range(len(gt)) if gt[g][0] == video]
        if not rows:
            fp[:, i] = 1
            continue
        segs = np.array([gt[g][1:] for g in rows], dtype=np.float64)
        lo = np.maximum(start, segs[:, 0])
        hi = np.minimum(end, segs[:, 1])
        inter = (hi - lo).clip(0)
        union = (segs[:, 1] - segs[:, 0]) + (end - start) - inter
        with np.errstate(invalid='ignore', divide='ignore'):
            tiou = inter / union
        ranked = tiou.argsort()[::-1]
        for t, thr in enumerate(thresholds):
            for j in ranked:
                if tiou[j] < thr:
                    fp[t, i] = 1
                    break
                if taken[t, rows[j]] >= 0:
                    continue
                tp[t, i] = 1
                taken[t, rows[j]] = i
                break
            if not tp[t, i] and not fp[t, i]:
                fp[t, i] = 1
    aps = []
    for t in range(len(thresholds)):
        ctp, cfp = np.cumsum(tp[t]), np.cumsum(fp[t])
        prec = np.hstack([[0], ctp / (ctp + cfp), [0]])
        rec = np.hstack([[0], ctp / npos, [1]])
        for k in range(len(prec) - 2, -1, -1):
            prec[k] = max(prec[k], prec[k + 1])
        idx = np.where(rec[1:] != rec[:-1])[0] + 1
        aps.append(np.sum((rec[idx] - rec[idx - 1]) * prec[idx]))
    return aps


@pytest.mark.parametrize('seed', range(6))
def test_equals_reference_on_random_inputs_with_ties(seed):
    rng = np.random.default_rng(seed)
    thresholds = (0.1, 0.3, 0.5, 0.7)
    samples, gt, preds = [], {}, {}
    for v in range(int(rng.integers(1, 8))):
        # integer times and three score levels: many tied tIoUs and scores
        num_gt, num_pred = int(rng.integers(0, 5)), int(rng.integers(0, 25))
        g = np.sort(rng.integers(0, 12, (num_gt, 2)), axis=1).astype(float)
        gl = rng.integers(0, 3, num_gt)
        p = np.sort(rng.integers(0, 12, (num_pred, 2)), axis=1).astype(float)
        pl = rng.integers(0, 3, num_pred)
        ps = rng.choice([.2, .5, .5, .9], num_pred)
        samples.append(video(g, gl, p, pl, ps))
        for (a, b), k in zip(g.tolist(), gl.tolist()):
            gt.setdefault(k, []).append((v, a, b))
        for (a, b), k, s in zip(p.tolist(), pl.tolist(), ps.tolist()):
            preds.setdefault(k, []).append((v, s, a, b))
    classes = sorted(gt)
    if not classes:
        pytest.skip('this seed drew no ground truth')
    per_class = [reference_class_ap(gt[k], preds.get(k, []), thresholds)
                 for k in classes]
    out = run(samples, tiou_thresholds=thresholds, observed_only=False)
    for t, thr in enumerate(thresholds):
        expected = sum(ap[t] for ap in per_class) / len(classes)
        assert out[f'detection/mAP@{thr:g}'] == expected


def test_observed_only_cuts_ground_truth_to_the_sampled_frames():
    sample = video([[0., 2.], [2., 6.], [6., 9.]], [0, 1, 0],
                   [[1., 3.]], [1], [.9],
                   frame_times=[1.0, 1.5, 2.0, 2.5])  # span [1, 3]
    out = run([sample])
    # only [0,2] -> [1,2] (class 0) and [2,6] -> [2,3] (class 1) remain
    assert out['detection/num_gt'] == 2
    # class 1: [1,3] vs [2,3] tIoU 0.5: TP at 0.3 and 0.5, not at 0.7
    assert out['detection/mAP@0.3'] == pytest.approx(0.5)
    assert out['detection/mAP@0.5'] == pytest.approx(0.5)
    assert out['detection/mAP@0.7'] == pytest.approx(0.)
    whole = run([sample], observed_only=False)
    assert whole['detection/num_gt'] == 3


def test_frame_map():
    s = dict(gt_frame_labels=torch.tensor([0, 0, 1, 1, -1]),
             pred_frame_scores=torch.tensor([[.9, .1], [.2, .3], [.8, .9],
                                             [.1, .8], [1., 0.]]))
    out = run([s])
    # class 0: 5/6 (see test_ranked_ap_by_hand); class 1: frames 2, 3 rank
    # first -> 1; the unlabelled frame is ignored
    assert out['detection/frame_mAP'] == pytest.approx((5 / 6 + 1) / 2)
    assert out['detection/mAP'] != out['detection/mAP']  # nan: no segments


def test_errors():
    with pytest.raises(ValueError, match='tiou_thresholds=()'):
        METRICS.build(dict(type='TemporalActionDetectionMetric',
                           tiou_thresholds=()))
    metric = METRICS.build(dict(type='TemporalActionDetectionMetric'))
    with pytest.raises(ValueError, match="'v' has gt_segments but no"):
        metric.process(None, [dict(video_id='v',
                                   gt_segments=torch.zeros(1, 2))])
