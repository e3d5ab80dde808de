"""DomainAccuracy on hand-computed cases."""
import math

import pytest

import hvlm.evaluation  # noqa: F401
from hvlm.registry import METRICS
from hvlm.structures import VideoDataSample


def sample(gt, pred, domain_id=0):
    meta = dict(video_id=f'{gt}-{pred}', domain_id=domain_id)
    if gt is not None:
        meta['domain'] = gt
    s = VideoDataSample(metainfo=meta)
    if pred is not None:
        s.pred_domain = pred
    return s


def evaluate(samples):
    metric = METRICS.build(dict(type='DomainAccuracy'))
    metric.process({}, [s.to_dict() for s in samples])
    return metric.evaluate(len(samples))


def test_hand_computed():
    # sports: 2 of 3 right; news: 1 of 1; general: 0 of 1; unknown ignored
    res = evaluate([
        sample('sports', 'sports'),
        sample('sports', 'news'),
        sample('sports', 'sports'),
        sample('news', 'news'),
        sample('general', 'tutorials'),
        sample('other', 'news', domain_id=-1),
        sample(None, 'news'),
    ])
    assert res['domain/top1'] == pytest.approx(3 / 5)
    assert res['domain/acc_sports'] == pytest.approx(2 / 3)
    assert res['domain/acc_news'] == 1.0
    assert res['domain/acc_general'] == 0.0
    assert res['domain/mean_class_acc'] == pytest.approx((2 / 3 + 1) / 3)
    assert res['domain/chance_top1'] == pytest.approx(3 / 5)
    assert 'domain/acc_tutorials' not in res


def test_nothing_known_is_nan_and_missing_prediction_fails():
    res = evaluate([sample(None, 'news')])
    assert math.isnan(res['domain/top1'])
    with pytest.raises(ValueError, match="no pred_domain.*router"):
        evaluate([sample('news', None)])
