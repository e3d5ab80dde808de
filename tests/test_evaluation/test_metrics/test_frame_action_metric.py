import math

import pytest
import torch

import hvlm.evaluation  # noqa: F401
from hvlm.registry import METRICS
from hvlm.structures import VideoDataSample


def sample(gt, pred, video_id='v'):
    s = VideoDataSample(metainfo=dict(video_id=video_id))
    if gt is not None:
        s.gt_frame_labels = torch.tensor(gt)
    s.pred_frame_labels = torch.tensor(pred)
    return s


def evaluate(samples, as_dicts=True):
    metric = METRICS.build(dict(type='FrameActionMetric'))
    metric.process({}, [s.to_dict() if as_dicts else s for s in samples])
    return metric.evaluate(len(samples))


@pytest.mark.parametrize('as_dicts', [True, False])
def test_hand_computed(as_dicts):
    # labelled frames: gt 0 0 0 1 | 0 2 ; pred 0 0 1 1 | 2 2
    out = evaluate([
        sample([0, 0, 0, 1, -1], [0, 0, 1, 1, 3]),
        sample([-1, 0, 2], [1, 2, 2]),
        sample(None, [1, 1]),  # not annotated: skipped
    ], as_dicts)
    assert out['action/frame_top1'] == pytest.approx(4 / 6)
    # class 0: 2/4, class 1: 1/1, class 2: 1/1
    assert out['action/frame_mean_class_acc'] == pytest.approx(
        (0.5 + 1 + 1) / 3)
    assert out['action/chance_top1'] == pytest.approx(4 / 6)


def test_one_result_per_video():
    """Unannotated videos still add a result: mmengine's collect_results
    cuts the gathered list to the dataset size."""
    metric = METRICS.build(dict(type='FrameActionMetric'))
    metric.process({}, [sample(None, [1]).to_dict(),
                        sample([0], [0]).to_dict()])
    assert len(metric.results) == 2


def test_all_ignored_is_nan():
    out = evaluate([sample([-1, -1], [0, 1])])
    assert all(math.isnan(v) for v in out.values())
    assert set(out) == {
        'action/frame_top1', 'action/frame_mean_class_acc',
        'action/chance_top1'
    }


def test_errors_name_the_video():
    with pytest.raises(ValueError, match="'bad' has 3 gt_frame_labels"):
        evaluate([sample([0, 1, 2], [0, 1], video_id='bad')])
