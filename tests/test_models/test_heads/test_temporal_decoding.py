import pytest
import torch

from hvlm.models.heads import (decode_segments, temporal_iou, temporal_nms,
                               temporal_smooth)


def test_temporal_iou_by_hand():
    a = torch.tensor([[0., 2.], [1., 3.]])
    b = torch.tensor([[1., 2.], [4., 5.], [0., 4.]])
    expected = torch.tensor([[1 / 2, 0., 2 / 4], [1 / 2, 0., 2 / 4]])
    torch.testing.assert_close(temporal_iou(a, b), expected)


def test_smooth_window_and_ends():
    x = torch.tensor([[[0.], [3.], [6.], [0.]]])
    y = temporal_smooth(x, 3)
    torch.testing.assert_close(y[0, :, 0], torch.tensor([1.5, 3., 3., 3.]))
    assert temporal_smooth(x, 1) is x
    with pytest.raises(ValueError, match='window=2'):
        temporal_smooth(x, 2)


def test_nms_is_class_wise_and_greedy():
    segs = torch.tensor([[0., 10.], [1., 10.], [0., 9.], [20., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.1])
    labels = torch.tensor([0, 0, 1, 0])
    # 1 overlaps 0 (IoU 0.9) in the same class -> dropped; 2 is class 1
    assert temporal_nms(segs, scores, labels, 0.5).tolist() == [0, 2, 3]
    assert temporal_nms(segs, scores, labels, 0.95).tolist() == [0, 1, 2, 3]


def _greedy_nms_by_matrix(segs, scores, labels, thr):
    """The textbook version, with the full [S, S] IoU matrix."""
    iou = temporal_iou(segs, segs)
    kept = []
    for i in scores.argsort(descending=True).tolist():
        if all(labels[i] != labels[j] or iou[i, j] <= thr for j in kept):
            kept.append(i)
    return kept


def test_nms_matches_the_matrix_version_and_stops_at_max_keep():
    g = torch.Generator().manual_seed(0)
    start = torch.rand(400, generator=g) * 100
    segs = torch.stack([start, start + torch.rand(400, generator=g) * 10 +
                        0.1], -1)
    scores = torch.rand(400, generator=g)
    labels = torch.randint(0, 3, (400, ), generator=g)
    expected = _greedy_nms_by_matrix(segs, scores, labels, 0.4)
    assert temporal_nms(segs, scores, labels, 0.4).tolist() == expected
    assert len(expected) > 20
    assert temporal_nms(segs, scores, labels, 0.4,
                        max_keep=20).tolist() == expected[:20]


def test_decode_runs_by_hand():
    # frames 0-1 class 0, 2-4 class 1, frame 5 background, 6-7 class 0
    probs = torch.tensor([[.9, .1], [.8, .2], [.2, .8], [.4, .6], [.1, .9],
                          [.5, .5], [.7, .3], [.6, .4]])
    act = torch.tensor([.9, .9, .6, .6, .6, .1, .4, .4])
    times = torch.arange(8.) * 0.5
    segs, labels, scores = decode_segments(probs, act, times,
                                           thresholds=(0.3, 0.5),
                                           nms_iou=0.5)
    # thr 0.3: [0,1] c0, [2,4] c1, [6,7] c0; thr 0.5: [0,1], [2,4] again
    # (dropped by NMS as duplicates).
    expected = {
        (0.0, 1.0, 0): (.9 * .9 + .8 * .9) / 2,
        (1.0, 2.5, 1): (.8 * .6 + .6 * .6 + .9 * .6) / 3,
        (3.0, 4.0, 0): (.7 * .4 + .6 * .4) / 2,
    }
    got = {(round(float(s), 4), round(float(e), 4), int(k)): float(v)
           for (s, e), k, v in zip(segs, labels, scores)}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value)
    assert scores.tolist() == sorted(scores.tolist(), reverse=True)


def test_decode_nothing_active():
    segs, labels, scores = decode_segments(
        torch.full((4, 3), 1 / 3), torch.zeros(4), torch.arange(4.))
    assert segs.shape == (0, 2) and labels.numel() == scores.numel() == 0
