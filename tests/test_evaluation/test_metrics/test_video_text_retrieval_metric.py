"""VideoTextRetrievalMetric on hand-made embeddings whose ranks are known,
and its chance levels against brute force."""
import itertools

import numpy as np
import pytest
import torch

from hvlm.evaluation.metrics.video_text_retrieval_metric import (
    VideoTextRetrievalMetric, chance_recall, ranks_of)


def sample(video, text_embed, text, caption=None, label_id=-1, scores=None):
    return dict(
        pred_video_embed=torch.tensor(video, dtype=torch.float32),
        pred_text_embed=torch.tensor(text_embed, dtype=torch.float32),
        text=text,
        caption=caption,
        label_id=label_id,
        pred_class_scores=None if scores is None else torch.tensor(scores))


def test_ranks_count_ties_against_the_query():
    scores = np.array([[0.9, 0.5, 0.5], [0.2, 0.2, 0.2], [0.1, 0.8, 0.3]])
    correct = np.array([[True, False, False], [False, True, False],
                        [True, False, True]])
    # row 0: first; row 1: all tied, ranked last; row 2: best correct is
    # 0.3, one wrong above it
    assert ranks_of(scores, correct).tolist() == [1, 3, 2]


def test_chance_recall_matches_brute_force():
    total, k = 6, 2
    for m in (1, 2, 3):
        hits = [
            any(i < m for i in perm[:k])
            for perm in itertools.permutations(range(total))
        ]
        assert chance_recall(np.array([m]), total, k) == pytest.approx(
            np.mean(hits))


def test_retrieval_with_repeated_captions():
    e = np.eye(3)
    metric = VideoTextRetrievalMetric()
    metric.process(None, [
        # two videos share caption A; one of them is closer to B
        sample(e[0], e[0], 'A', 'A', 0, [1., 0.]),
        sample(e[1], e[0], 'A', 'A', 1, [0., 1.]),
        sample(e[1] * .9 + e[0] * .1, e[1], 'B', 'B', 1, [1., 0.]),
        # no caption: in zero-shot only
        sample(e[2], e[2], 'a video of x.', None, 0, [0.2, 0.1]),
    ])
    out = metric.compute_metrics(metric.results)
    # zero-shot: preds 0, 1, 0, 0 vs labels 0, 1, 1, 0
    assert out['top1'] == pytest.approx(75.)
    assert out['mean_class'] == pytest.approx((1 + .5) / 2 * 100)
    assert out['chance_top1'] == 50.
    # v2t over texts [A, B]: video 0 -> A rank 1; video 1 (e1) scores
    # A=0, B=1 -> rank 2; video 2 scores A=.1, B=.9 -> B rank 1
    assert out['v2t_R@1'] == pytest.approx(200 / 3)
    assert out['v2t_medr'] == 1.
    # t2v: A's best video is video 0 (score 1) -> 1; B's is video 2
    # (score .9) but video 1 scores 1.0 -> rank 2
    assert out['t2v_R@1'] == pytest.approx(50.)
    assert out['t2v_R@5'] == 100.
    assert out['num_texts'] == 2 and out['num_videos'] == 3
    # chance of t2v R@1: A has 2 of 3 correct, B 1 of 3
    assert out['t2v_chance_R@1'] == pytest.approx((2 / 3 + 1 / 3) / 2 * 100)
