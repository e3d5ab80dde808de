import pytest
import torch

import hvlm.models  # noqa: F401
from hvlm.registry import MODELS
from hvlm.structures import VideoDataSample

MEAN, STD = [10., 20., 30.], [2., 4., 5.]


def build(**kwargs):
    return MODELS.build(
        dict(type='VideoDataPreprocessor', mean=MEAN, std=STD, **kwargs))


def test_stack_normalise_and_drop_skipped():
    inputs = [
        torch.randint(0, 256, (2, 3, 4, 5, 6), dtype=torch.uint8)
        for _ in range(3)
    ]
    samples = [VideoDataSample(metainfo=dict(video_id=str(i)))
               for i in range(3)]
    out = build()(dict(inputs=inputs, data_samples=samples, skipped=['x']))
    assert set(out) == {'inputs', 'data_samples'}
    assert out['inputs'].shape == (3, 2, 3, 4, 5, 6)
    assert out['inputs'].dtype == torch.float32
    expected = (inputs[1][:, 2].float() - 30.) / 5.
    torch.testing.assert_close(out['inputs'][1, :, 2], expected)
    assert [s.video_id for s in out['data_samples']] == ['0', '1', '2']


def test_empty_batch():
    out = build()(dict(inputs=[], data_samples=[], skipped=['a', 'b']))
    assert out == dict(inputs=None, data_samples=[])


def test_without_normalisation():
    pre = MODELS.build(dict(type='VideoDataPreprocessor'))
    x = torch.full((1, 3, 2, 2, 2), 7, dtype=torch.uint8)
    out = pre(dict(inputs=[x], data_samples=[VideoDataSample()]))
    assert torch.equal(out['inputs'][0], x.float())


def test_errors():
    with pytest.raises(ValueError, match='together'):
        MODELS.build(dict(type='VideoDataPreprocessor', mean=MEAN))
    with pytest.raises(ValueError, match='std=.*positive'):
        MODELS.build(
            dict(type='VideoDataPreprocessor', mean=MEAN, std=[1, 0, 1]))
    with pytest.raises(ValueError, match='different shapes'):
        build()(dict(inputs=[torch.zeros(1, 3, 2, 2, 2),
                             torch.zeros(1, 3, 2, 4, 2)]))
    with pytest.raises(ValueError, match='1 channels'):
        build()(dict(inputs=[torch.zeros(1, 1, 2, 2, 2)]))
