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


def _write_split(root, videos):
    """``videos``: ``(video_id, domain, [(question, answer), ...])``."""
    import json
    ann = root / 'annotations'
    ann.mkdir(parents=True)
    (ann / 'metadata.json').write_text(json.dumps([
        dict(video_id=v, domain=d, duration=5.) for v, d, _ in videos]))
    (ann / 'video_qa.json').write_text(json.dumps([
        dict(video_id=v, qa_pairs=[dict(question=q, answer=a)
                                   for q, a in qa])
        for v, _, qa in videos]))
    return str(root)


def test_train_prior_is_fitted_on_training_answers_of_the_domain(tmp_path):
    root = _write_split(tmp_path / 'training', [
        ('t0', 'sports', [('q1', 'red'), ('q2', 'two')]),
        ('t1', 'sports', [('q1', 'red'), ('q2', 'three')]),
        ('t2', 'sports', [('q1', 'blue'), ('q2', 'three')]),
        # another domain: ignored when only sports videos are evaluated
        ('t3', 'news', [('q1', 'blue'), ('q2', 'two')]),
        ('t4', 'news', [('q1', 'blue'), ('q2', 'two')]),
    ])

    def sample(qa):
        return dict(video_id='v', domain='sports',
                    gt_qa=[dict(question=q, answer=a, answer_id=i)
                           for q, a, i, _ in qa],
                    pred_qa=[dict(question=q, answer_id=p, score=1.)
                             for q, _, _, p in qa])

    samples = [
        sample([('q1', 'blue', 0, 0), ('q2', 'two', 3, 3)]),
        sample([('q1', 'blue', 0, 0), ('q2', 'two', 3, 0)]),
        sample([('q1', 'red', 1, 1), ('q3', 'two', 3, 3)]),
    ]
    metric = METRICS.build(dict(type='VideoQAMetric', prior_root=root))
    metric.process(None, samples)
    out = metric.evaluate(len(samples))
    assert out['qa/top1'] == pytest.approx(5 / 6)
    # training (sports): q1 -> red, q2 -> three; the unseen q3 gets the
    # most frequent sports answer, 'red' (3 of 6): only the red q1 is right
    assert out['qa/train_prior_top1'] == pytest.approx(1 / 6)
    # fitted on the evaluated questions: q1 -> blue, q2 -> two, q3 -> two
    assert out['qa/question_prior_top1'] == pytest.approx(5 / 6)
    with pytest.raises(FileNotFoundError, match='prior_root'):
        bad = METRICS.build(dict(type='VideoQAMetric',
                                 prior_root=str(tmp_path / 'nothing')))
        bad.process(None, samples)
        bad.evaluate(len(samples))
