"""roi_align against a loop over its definition written in numpy."""
import math

import numpy as np
import pytest
import torch

from hvlm.models.layers import boxes_to_rois, roi_align


def _bilinear(img, y, x):
    H, W = img.shape[1:]
    if y < -1.0 or y > H or x < -1.0 or x > W:
        return np.zeros(img.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= H - 1:
        y0 = y1 = H - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= W - 1:
        x0 = x1 = W - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * img[:, y0, x0] + (1 - ly) * lx *
            img[:, y0, x1] + ly * (1 - lx) * img[:, y1, x0] +
            ly * lx * img[:, y1, x1])


def _reference(feats, rois, out, scale, ratio, aligned):
    K, C = len(rois), feats.shape[1]
    res = np.zeros((K, C, out[0], out[1]))
    off = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(rois):
        sx, sy = x1 * scale - off, y1 * scale - off
        w, h = x2 * scale - off - sx, y2 * scale - off - sy
        if not aligned:
            w, h = max(w, 1.0), max(h, 1.0)
        bh, bw = h / out[0], w / out[1]
        gh = ratio if ratio > 0 else math.ceil(h / out[0])
        gw = ratio if ratio > 0 else math.ceil(w / out[1])
        for ph in range(out[0]):
            for pw in range(out[1]):
                acc = np.zeros(C)
                for iy in range(max(gh, 0)):
                    y = sy + ph * bh + (iy + 0.5) * bh / gh
                    for ix in range(max(gw, 0)):
                        x = sx + pw * bw + (ix + 0.5) * bw / gw
                        acc += _bilinear(feats[int(b)], y, x)
                res[k, :, ph, pw] = acc / max(gh * gw, 1)
    return res


@pytest.mark.parametrize('aligned', [False, True])
@pytest.mark.parametrize('ratio', [2, 0, -1])
@pytest.mark.parametrize('scale', [1.0, 0.25])
def test_matches_definition(aligned, ratio, scale):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(2, 3, 7, 9))
    in_h, in_w = 7 / scale, 9 / scale
    rois = [[0, 0, 0, in_w, in_h],  # the whole map
            [1, 1.3 / scale, 0.7 / scale, 5.2 / scale, 6.1 / scale],
            [0, -2.0 / scale, -1.5 / scale, 2.0 / scale, 3.0 / scale],
            [1, 8.5 / scale, 6.5 / scale, 11 / scale, 9 / scale],  # edge
            [0, 3.1 / scale, 2.2 / scale, 3.3 / scale, 2.4 / scale]]  # tiny
    for _ in range(5):
        x1, y1 = rng.uniform(-1, 8, 2) / scale
        w, h = rng.uniform(0.2, 6, 2) / scale
        rois.append([int(rng.integers(2)), x1, y1, x1 + w, y1 + h])
    rois = np.array(rois)
    got = roi_align(torch.from_numpy(feats), torch.from_numpy(rois), (2, 3),
                    spatial_scale=scale, sampling_ratio=ratio,
                    aligned=aligned)
    want = _reference(feats, rois, (2, 3), scale, ratio, aligned)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-9, atol=1e-9)


def test_list_of_boxes_float32_and_gradient():
    rng = np.random.default_rng(1)
    feats = torch.from_numpy(rng.normal(size=(2, 4, 6, 6)))
    boxes = [torch.tensor([[0.5, 0.5, 4.0, 5.0]], dtype=torch.float64),
             torch.tensor([[1.0, 2.0, 3.0, 3.5], [0.0, 0.0, 6.0, 6.0]],
                          dtype=torch.float64)]
    rois = boxes_to_rois(boxes)
    assert rois[:, 0].tolist() == [0, 1, 1]
    a = roi_align(feats, boxes, 3, aligned=True)
    b = roi_align(feats.float(), rois.float(), 3, aligned=True)
    torch.testing.assert_close(a.float(), b, rtol=1e-5, atol=1e-5)
    feats.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda f: roi_align(f, rois, 2, sampling_ratio=2, aligned=True),
        (feats, ))
    with pytest.raises(ValueError, match='expected \\[K, 5\\]'):
        roi_align(feats, torch.zeros(3, 4), 2)
