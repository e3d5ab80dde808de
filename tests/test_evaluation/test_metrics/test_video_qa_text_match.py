"""VideoQAMetric on answers written as text (LLMHead): normalised exact
match, and baselines counted on normalised answers."""
import pytest

import hvlm.evaluation  # noqa: F401
from hvlm.evaluation.metrics.video_qa_metric import normalise_answer
from hvlm.registry import METRICS


def video(*items):
    return dict(
        gt_qa=[dict(question=q, answer=g, answer_id=-1) for q, g, _ in items],
        pred_qa=[dict(question=q, answer=p, answer_id=-1)
                 for q, _, p in items])


def run(samples, **kwargs):
    metric = METRICS.build(dict(type='VideoQAMetric', **kwargs))
    metric.process(None, samples)
    return metric.evaluate(len(samples))


def test_normalise_answer():
    assert normalise_answer('The Ball, bounces!') == 'ball bounces'
    assert normalise_answer('  an   apple.') == 'apple'
    assert normalise_answer('') == ''


def test_text_answers_by_hand():
    out = run([
        video(('q1', 'rolls left', 'Rolls left.'), ('q2', 'a ball', 'ball')),
        video(('q1', 'rolls left', 'rolls right'), ('q2', 'a box', 'box')),
        video(('q1', 'jumps', 'jumps over'), ('q2', '', 'nothing')),
    ])
    # right: 'Rolls left.', 'ball', 'box'; '' cannot be matched
    assert out['qa/top1'] == pytest.approx(3 / 6)
    assert out['qa/majority_top1'] == pytest.approx(2 / 6)  # 'rolls left'
    # q1 -> 'rolls left' (2 of 3), q2 -> 'ball' or 'box' (1 of 2 known)
    assert out['qa/question_prior_top1'] == pytest.approx(3 / 6)


def test_match_by_id_ignores_the_text():
    samples = [dict(gt_qa=[dict(question='q', answer='x', answer_id=2)],
                    pred_qa=[dict(question='q', answer='y', answer_id=2)])]
    assert run(samples, match='id')['qa/top1'] == 1.
    assert run(samples)['qa/top1'] == 0.  # auto: the text decides
    with pytest.raises(ValueError, match="match='exact'"):
        METRICS.build(dict(type='VideoQAMetric', match='exact'))
    with pytest.raises(ValueError, match='answer string'):
        run([dict(gt_qa=[dict(question='q', answer='x', answer_id=2)],
                  pred_qa=[dict(question='q', answer_id=2)])],
            match='text')


def test_breakdown_by_question_and_by_first_word():
    samples = [
        video(('What colour is it?', 'red', 'red'),
              ('what colour is it', 'blue', 'red'),
              ('How many?', 'two', 'two')),
        video(('what shape is it?', 'box', 'box'),
              ('How many?', 'three', 'four')),
    ]
    out = run(samples, breakdown='question')
    # the normalised question names the group: case and '?' do not count
    assert out['qa/top1_what_colour_is_it'] == pytest.approx(1 / 2)
    assert out['qa/num_what_colour_is_it'] == 2.
    assert out['qa/top1_what_shape_is_it'] == 1.
    assert out['qa/top1_how_many'] == pytest.approx(1 / 2)
    assert out['qa/top1'] == pytest.approx(3 / 5)
    out = run(samples, breakdown='first_word')
    assert out['qa/top1_what'] == pytest.approx(2 / 3)
    assert out['qa/num_what'] == 3.
    assert out['qa/top1_how'] == pytest.approx(1 / 2)
    assert not any('colour' in k for k in out)
    assert not any('top1_' in k for k in run(samples))
    with pytest.raises(ValueError, match="breakdown='type'"):
        METRICS.build(dict(type='VideoQAMetric', breakdown='type'))
