"""MixUp / CutMix with soft targets, and the severity presets."""
import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

from hvlm.models.layers import image_augment as aug
from hvlm.registry import MODELS


def samples(labels):
    out = []
    for y in labels:
        s = BaseDataElement()
        s.gt_label = torch.tensor(y)
        out.append(s)
    return out


def test_mixup_definition_and_unsmoothed_targets():
    mix = MODELS.build(dict(type='MixUp', alpha=0.8, num_classes=3))
    x = torch.rand(3, 3, 4, 4)
    perm = torch.tensor([2, 0, 1])
    out, s = mix(x, samples([0, 1, 2]), lam=0.7, perm=perm)
    torch.testing.assert_close(out, 0.7 * x + 0.3 * x[perm])
    np.testing.assert_allclose(s[0].gt_score.numpy(), [0.7, 0, 0.3],
                               atol=1e-6)
    # lam is drawn from Beta(alpha, alpha) for every batch
    np.random.seed(0)
    lams = [mix.draw(4)[0] for _ in range(2000)]
    assert abs(np.mean(lams) - 0.5) < 0.03
    assert abs(np.var(lams) - 1 / (4 * (2 * 0.8 + 1))) < 0.01


def test_cutmix_pastes_a_box_and_weights_by_area():
    mix = MODELS.build(dict(type='CutMix', alpha=1.0, num_classes=2))
    x = torch.zeros(2, 1, 10, 10)
    x[1] = 1
    np.random.seed(3)
    out, s = mix(x, samples([0, 1]), lam=0.64, perm=torch.tensor([1, 0]))
    pasted = out[0].mean().item()  # fraction of pixels from sample 1
    assert 0 < pasted <= 0.36 + 1e-6
    np.testing.assert_allclose(s[0].gt_score.numpy(),
                               [1 - pasted, pasted], atol=1e-6)
    rand = MODELS.build(dict(type='RandomBatchAugment', augments=[
        dict(type='MixUp', num_classes=2), dict(type='CutMix',
                                               num_classes=2)],
        probs=[0.5, 0.5]))
    _, s = rand(x, samples([0, 1]))
    assert s[0].gt_score.shape == (2, )
    with pytest.raises(ValueError, match='probs'):
        MODELS.build(dict(type='RandomBatchAugment',
                          augments=[dict(type='MixUp', num_classes=2)],
                          probs=[1.2]))


def test_severity_presets():
    with pytest.raises(ValueError, match="'extreme' is not one of"):
        MODELS.build(dict(type='SeverityAugment', severity='extreme'))
    light = MODELS.build(dict(type='SeverityAugment', severity='light'))
    aggressive = MODELS.build(dict(type='SeverityAugment',
                                   severity='aggressive'))
    assert set(light.ops) < set(aggressive.ops)
    assert {'randaugment', 'cutout', 'grid_distortion'} <= set(
        aggressive.ops)
    torch.manual_seed(0)
    x = torch.rand(6, 3, 16, 16)
    for preset in ('light', 'moderate', 'aggressive'):
        out, _ = MODELS.build(dict(type='SeverityAugment',
                                   severity=preset))(x, [])
        assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
        assert not torch.allclose(out[0], out[1])


def test_aggressive_ops_match_definitions():
    x = torch.rand(2, 3, 8, 8)
    out = aug.cutout(x, torch.tensor([[1, 2, 3, 4], [0, 0, 0, 4]]), 0.5)
    ref = x.clone()
    ref[0, :, 1:4, 2:6] = 0.5
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(aug.grid_distortion(x, torch.zeros(2, 2, 5,
                                                                  5)), x)
    # a constant x offset of one pixel (2/W in normalised units) shifts
    shifted = aug.grid_distortion(x, torch.full((2, 2, 3, 3), 0.) +
                                  torch.tensor([2 / 8, 0.]).view(1, 2, 1, 1))
    torch.testing.assert_close(shifted[..., :-1], x[..., 1:])
    torch.testing.assert_close(
        aug.solarize(x, torch.tensor([0.5, 1.1])),
        torch.stack([torch.where(x[0] >= 0.5, 1 - x[0], x[0]), x[1]]))
    levels = aug.posterize(x, torch.tensor([1, 8]))
    assert set((levels[0] * 255).round().unique().tolist()) <= {0., 128.}
    torch.testing.assert_close(levels[1], torch.floor(x[1] * 255) / 255)
    rot = aug.rotate(x, torch.tensor([0., 90.]))
    torch.testing.assert_close(rot[0], x[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(rot[1], x[1].rot90(1, (1, 2)), atol=1e-5,
                               rtol=0)
