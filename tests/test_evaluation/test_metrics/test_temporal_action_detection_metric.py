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
