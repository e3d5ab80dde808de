import pytest

import hvlm.evaluation  # noqa: F401
from hvlm.registry import METRICS


def video(*items):
    return dict(
        gt_qa=[dict(question=q, answer_id=g) for q, g, _ in items],
        pred_qa=[dict(question=q, answer_id=p, score=1.)
                 for q, _, p in items])


def run(samples):
    metric = METRICS.build(dict(type='VideoQAMetric'))
    metric.process(None, samples)
    return metric.evaluate(len(samples))


def test_top1_and_blind_baselines_by_hand():
    out = run([
        video(('q1', 1, 1), ('q2', 3, 2)),
        video(('q1', 1, 0), ('q2', 4, 4)),
        video(('q1', 2, 2), ('q2', -1, 0)),  # unknown answer: always wrong
        dict(video_id='no qa'),
    ])
    assert out['qa/top1'] == pytest.approx(3 / 6)
    assert out['qa/majority_top1'] == pytest.approx(2 / 6)  # answer 1
    # q1 -> 1 (2 of 3), q2 -> 3 or 4 (1 of 2 known)
    assert out['qa/question_prior_top1'] == pytest.approx(3 / 6)
    assert out['qa/num_questions'] == 6


def test_empty_is_nan():
    out = run([dict(video_id='v')])
    assert out['qa/top1'] != out['qa/top1']


def test_errors():
    metric = METRICS.build(dict(type='VideoQAMetric'))
    with pytest.raises(ValueError, match="'v' has gt_qa but no pred_qa"):
        metric.process(None, [dict(video_id='v', gt_qa=[
            dict(question='q', answer_id=0)])])
    bad = video(('q1', 1, 1))
    bad['pred_qa'][0]['question'] = 'other'
    with pytest.raises(ValueError, match="'other' does not match"):
        metric.process(None, [bad])
    short = video(('q1', 1, 1), ('q2', 1, 1))
    short['pred_qa'].pop()
    with pytest.raises(ValueError, match='2 gt_qa but 1 pred_qa'):
        metric.process(None, [short])
