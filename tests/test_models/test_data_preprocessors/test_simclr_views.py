"""Per-sample SimCLR augmentations: each op against its definition
(numpy / colorsys), and every sample of a batch drawing its own
parameters."""
import colorsys

import numpy as np
import torch

from hvlm.models.layers import image_augment as aug
from hvlm.registry import MODELS


def test_each_sample_draws_its_own_parameters():
    views = MODELS.build(dict(type='SimCLRViews', crop_size=16))
    g = torch.Generator().manual_seed(0)
    p = views.sample_params(64, 32, 32, generator=g)
    for key in ('boxes', 'brightness', 'contrast', 'saturation', 'hue',
                'sigma'):
        assert len(torch.unique(p[key], dim=0)) > 10, key
    for key, prob in (('flip', 0.5), ('grayscale', 0.2)):
        assert 0 < p[key].float().mean() < 1, key
    # jitter is skipped for ~20% of samples: factor exactly 1 there
    skipped = (p['brightness'] == 1).float().mean()
    assert 0.05 < skipped < 0.45
    top, left, h, w = p['boxes'].unbind(1)
    area = h * w / (32 * 32)
    assert (top >= 0).all() and (left >= 0).all()
    assert (top + h <= 32).all() and (left + w <= 32).all()
    assert area.min() >= 0.15 and area.max() <= 1.0
    assert (w / h).min() >= 0.7 and (w / h).max() <= 1.4


def test_views_of_one_batch_differ_per_sample():
    torch.manual_seed(0)
    views = MODELS.build(dict(type='SimCLRViews', crop_size=12))
    img = torch.rand(1, 3, 24, 24).expand(4, 3, 24, 24).contiguous()
    out, _ = views(img, [None] * 4)
    assert out.shape == (4, 2, 3, 12, 12)
    assert 0 <= out.min() and out.max() <= 1
    # the same image four times: every sample's view differs
    first = out[:, 0].flatten(1)
    assert torch.cdist(first, first).triu(1)[0, 1:].min() > 1e-3
    assert not torch.allclose(out[:, 0], out[:, 1])
    # given pairs (two clips of a video) are kept as the positive pair
    pairs = torch.rand(3, 2, 3, 24, 24)
    out, _ = views(pairs, [None] * 3)
    assert out.shape == (3, 2, 3, 12, 12)


def bilinear_reference(img, top, left, h, w, out_h, out_w):
    C, H, W = img.shape
    out = np.zeros((C, out_h, out_w))
    for i in range(out_h):
        for j in range(out_w):
            y = min(max(top + (i + .5) * h / out_h - .5, 0), H - 1)
            x = min(max(left + (j + .5) * w / out_w - .5, 0), W - 1)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            y1, x1 = min(y0 + 1, H - 1), min(x0 + 1, W - 1)
            dy, dx = y - y0, x - x0
            out[:, i, j] = ((1 - dy) * (1 - dx) * img[:, y0, x0] +
                            (1 - dy) * dx * img[:, y0, x1] +
                            dy * (1 - dx) * img[:, y1, x0] +
                            dy * dx * img[:, y1, x1])
    return out


def test_resized_crop_and_flip_match_definitions():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 10, 12)
    boxes = torch.tensor([[2., 3., 6., 5.], [0., 0., 10., 12.]])
    out = aug.resized_crop(x, boxes, (7, 4))
    for b in range(2):
        ref = bilinear_reference(x[b].numpy(), *boxes[b].tolist(), 7, 4)
        np.testing.assert_allclose(out[b].numpy(), ref, atol=1e-5)
    flipped = aug.hflip(x, torch.tensor([True, False]))
    torch.testing.assert_close(flipped[0], x[0].flip(-1))
    torch.testing.assert_close(flipped[1], x[1])


def test_colour_ops_match_definitions():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 5, 6)
    xn = x.numpy()
    grey = (0.299 * xn[:, 0] + 0.587 * xn[:, 1] + 0.114 * xn[:, 2])[:, None]
    f = torch.tensor([1.5, 0.4])
    fn = f.numpy()[:, None, None, None]
    np.testing.assert_allclose(
        aug.adjust_brightness(x, f).numpy(), np.clip(xn * fn, 0, 1),
        atol=1e-6)
    mean = grey.mean((1, 2, 3), keepdims=True)
    np.testing.assert_allclose(
        aug.adjust_contrast(x, f).numpy(),
        np.clip(fn * xn + (1 - fn) * mean, 0, 1), atol=1e-6)
    np.testing.assert_allclose(
        aug.adjust_saturation(x, f).numpy(),
        np.clip(fn * xn + (1 - fn) * grey, 0, 1), atol=1e-6)
    gray = aug.to_grayscale(x, torch.tensor([True, False]))
    np.testing.assert_allclose(gray[0].numpy(), np.repeat(grey[0], 3, 0),
                               atol=1e-6)
    torch.testing.assert_close(gray[1], x[1])
    shift = torch.tensor([0.3, -0.45])
    hued = aug.adjust_hue(x, shift).numpy()
    for b in range(2):
        for i in range(5):
            for j in range(6):
                h, s, v = colorsys.rgb_to_hsv(*xn[b, :, i, j])
                ref = colorsys.hsv_to_rgb((h + shift[b].item()) % 1, s, v)
                np.testing.assert_allclose(hued[b, :, i, j], ref, atol=1e-5)


def test_gaussian_blur_matches_numpy():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 9, 11)
    sigma = torch.tensor([1.3, 0.0])
    out = aug.gaussian_blur(x, sigma, 5).numpy()
    t = np.arange(-2, 3)
    k = np.exp(-t**2 / (2 * 1.3**2))
    k /= k.sum()
    padded = np.pad(x[0].numpy(), ((0, 0), (2, 2), (2, 2)), mode='reflect')
    ref = np.zeros((3, 9, 11))
    for i in range(9):
        for j in range(11):
            ref[:, i, j] = (padded[:, i:i + 5, j:j + 5] *
                            np.outer(k, k)).sum((1, 2))
    np.testing.assert_allclose(out[0], ref, atol=1e-5)
    np.testing.assert_allclose(out[1], x[1].numpy())  # sigma 0: unchanged


def test_preprocessor_runs_augments_in_training_only():
    pre = MODELS.build(
        dict(type='ImageDataPreprocessor', mean=[127.5] * 3,
             std=[127.5] * 3,
             batch_augments=[dict(type='SimCLRViews', crop_size=8)]))
    imgs = [torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8)
            for _ in range(3)]
    out = pre(dict(inputs=imgs, data_samples=[None] * 3), training=True)
    assert out['inputs'].shape == (3, 2, 3, 8, 8)
    assert -1 <= out['inputs'].min() and out['inputs'].max() <= 1
    out = pre(dict(inputs=imgs, data_samples=[None] * 3), training=False)
    ref = torch.stack(imgs).float() / 127.5 - 1
    torch.testing.assert_close(out['inputs'], ref)
