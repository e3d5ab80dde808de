import math

import pytest

import hvlm.evaluation  # noqa: F401
from hvlm.evaluation.metrics.caption_metric import caption_scores, normalise
from hvlm.registry import METRICS


def test_bleu4_and_rouge_l_by_hand():
    # 4/5 unigrams, 3/4 bigrams, 2/3 trigrams, 1/2 4-grams match; same
    # length (no brevity penalty)
    out = caption_scores({'0': ['a b c d f']}, {'0': 'a b c d e'})
    assert out['BLEU_4'] == pytest.approx(
        (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2)**0.25, abs=1e-6)
    # LCS 'a c d' = 3 of 4 words each way: P = R = 3/4, F_beta = 3/4
    out = caption_scores({'0': ['a b c d']}, {'0': 'a c d e'})
    assert out['ROUGE_L'] == pytest.approx(0.75)


def test_cider_d_by_hand():
    # Every n-gram of a reference occurs in 1 of the 2 references; a
    # perfect candidate has cosine 1 at n = 1..4 and no length penalty:
    # CIDEr-D = 10 * mean_n(1) = 10; an empty one scores 0.
    refs = {'0': ['a b c d'], '1': ['e f g h']}
    assert caption_scores(refs, {'0': 'a b c d', '1': 'e f g h'})[
        'CIDEr'] == pytest.approx(10.)
    assert caption_scores(refs, {'0': 'a b c d', '1': ''})[
        'CIDEr'] == pytest.approx(5.)


def caption(text, start, end):
    return dict(text=text, start=start, end=end)


def test_pairs_segments_and_constant_baseline():
    samples = [
        dict(gt_captions=[caption('A red circle spins.', 0., 1.),
                          caption('a blue bar rolls left', 1., 2.)],
             pred_captions=[caption('a blue bar rolls left', 1., 2.),
                            caption('a red circle spins', 0., 1.)],
             frame_times=[0., .5, 1., 1.5]),
        dict(gt_captions=[caption('a red circle spins', 0., 1.),
                          caption('never seen here at all', 5., 6.)],
             pred_captions=[caption('a red circle spins', 0., 1.),
                            caption('x', 5., 6.)],
             frame_times=[0., .5, 1., 1.5]),
        dict(video_id='no captions'),
    ]
    metric = METRICS.build(dict(type='CaptionMetric'))
    metric.process(None, samples)
    out = metric.evaluate(3)
    assert out['caption/num_segments'] == 3  # [5, 6] is outside [0, 2]
    refs = {'0': ['a red circle spins'], '1': ['a blue bar rolls left'],
            '2': ['a red circle spins']}
    expected = caption_scores(refs, {k: v[0] for k, v in refs.items()})
    for key in ('BLEU_4', 'CIDEr', 'ROUGE_L'):
        assert out[f'caption/{key}'] == pytest.approx(expected[key])
    constant = caption_scores(refs, {k: 'a red circle spins' for k in refs})
    for key in ('BLEU_4', 'CIDEr', 'ROUGE_L'):
        assert out[f'caption/const_{key}'] == pytest.approx(constant[key])
    assert out['caption/ROUGE_L'] == pytest.approx(1.)
    assert out['caption/const_ROUGE_L'] < 1.


def test_normalise_and_errors():
    assert normalise('A Red circle, spins!') == 'a red circle spins'
    metric = METRICS.build(dict(type='CaptionMetric'))
    with pytest.raises(ValueError, match="'v' has gt_captions but no"):
        metric.process(None, [dict(video_id='v',
                                   gt_captions=[caption('a', 0., 1.)])])


def test_empty_prediction_is_an_empty_caption():
    # All n-grams of the one non-empty candidate match (precisions 1) and
    # the empty one adds nothing: candidate length 4 against reference
    # length 8 -> brevity penalty exp(1 - 8 / 4), BLEU-4 = exp(-1). A
    # placeholder word would add a length and an unmatched unigram.
    refs = {'0': ['a b c d'], '1': ['e f g h']}
    out = caption_scores(refs, {'0': 'a b c d', '1': ''})
    assert out['BLEU_4'] == pytest.approx(math.exp(-1), abs=1e-6)
    assert out['ROUGE_L'] == pytest.approx(0.5)


def test_captions_in_any_language():
    samples = [
        dict(gt_captions=[caption('一个男人在跑步。', 0., 1.),
                          caption('¡El niño está aquí!', 1., 2.),
                          caption('"...!"', 2., 3.)],
             pred_captions=[caption('一 个 女 人 在 跑 步', 0., 1.),
                            caption('el niño está', 1., 2.),
                            caption('', 2., 3.)])
    ]
    metric = METRICS.build(dict(type='CaptionMetric', observed_only=False))
    metric.process(None, samples)
    out = metric.evaluate(1)
    # the punctuation-only reference has no word and is left out
    assert out['caption/num_segments'] == 2
    refs = {'0': ['一 个 男 人 在 跑 步'], '1': ['¡ el niño está aquí']}
    expected = caption_scores(refs, {'0': '一 个 女 人 在 跑 步',
                                     '1': 'el niño está'})
    for key in ('BLEU_4', 'CIDEr', 'ROUGE_L'):
        assert math.isfinite(out[f'caption/{key}'])
        assert out[f'caption/{key}'] == pytest.approx(expected[key])
    assert 0 < out['caption/BLEU_4'] < 1


def test_only_punctuation_gives_nan_not_a_crash():
    metric = METRICS.build(dict(type='CaptionMetric', observed_only=False))
    metric.process(None, [dict(gt_captions=[caption('...', 0., 1.)],
                               pred_captions=[caption('a', 0., 1.)])])
    out = metric.evaluate(1)
    assert out['caption/num_segments'] == 0
    assert math.isnan(out['caption/CIDEr'])
