"""Per-sample image augmentations on batches, written in torch.

Every function takes a float batch ``x`` ``[B, C, H, W]`` in ``[0, 1]``
and one parameter *per sample* (a tensor of length ``B``), so each image of
a batch gets its own crop, flip, colour change and blur. The seed system
drew one set of parameters for the whole batch, which makes the two views
of all samples differ in the same way; that shortcut is what these
functions exist to avoid. Parameters are drawn by the ``sample_*``
functions from a ``torch.Generator`` so that runs are reproducible.

Colour operations follow the usual definitions (those of torchvision's
functional API, re-derived here): brightness multiplies, contrast blends
with the mean grey level of the image, saturation blends with the
grey image, hue rotates the hue channel in HSV; grey is
``0.299 R + 0.587 G + 0.114 B``.
"""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

GREY_WEIGHTS = (0.299, 0.587, 0.114)


def _uniform(n: int, low: float, high: float,
             generator: Optional[torch.Generator]) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def sample_resized_crop(n: int,
                        height: int,
                        width: int,
                        scale: Sequence[float] = (0.2, 1.0),
                        ratio: Sequence[float] = (3 / 4, 4 / 3),
                        generator: Optional[torch.Generator] = None,
                        tries: int = 10) -> Tensor:
    """Boxes ``[n, 4]`` ``(top, left, height, width)`` in pixels: area a
    uniform fraction of the image in ``scale``, aspect ratio log-uniform in
    ``ratio``; the first of ``tries`` draws that fits, else the whole image
    (each sample on its own)."""
    area = height * width
    target = area * _uniform(n * tries, *scale, generator).view(n, tries)
    log_r = _uniform(n * tries, math.log(ratio[0]), math.log(ratio[1]),
                     generator).view(n, tries)
    aspect = log_r.exp()
    w = (target * aspect).sqrt().round()
    h = (target / aspect).sqrt().round()
    fits = (w >= 1) & (h >= 1) & (w <= width) & (h <= height)
    first = torch.where(fits.any(1), fits.float().argmax(1),
                        torch.full((n, ), -1))
    rows = torch.arange(n)
    h = torch.where(first >= 0, h[rows, first.clamp_min(0)],
                    torch.full((n, ), float(height)))
    w = torch.where(first >= 0, w[rows, first.clamp_min(0)],
                    torch.full((n, ), float(width)))
    top = (torch.rand(n, generator=generator) * (height - h + 1)).floor()
    left = (torch.rand(n, generator=generator) * (width - w + 1)).floor()
    return torch.stack([top, left, h, w], dim=1)


def resized_crop(x: Tensor, boxes: Tensor, size: Tuple[int, int]) -> Tensor:
    """Bilinear resample each image's box ``(top, left, h, w)`` to
    ``size``: output pixel ``(i, j)`` reads the input at
    ``(top + (i + .5) h / H' - .5, left + (j + .5) w / W' - .5)``,
    positions outside the image taking the nearest border pixel."""
    B, _, H, W = x.shape
    out_h, out_w = size
    boxes = boxes.to(x)
    top, left, h, w = boxes.unbind(1)  # each [B]
    i = torch.arange(out_h, dtype=x.dtype, device=x.device)
    j = torch.arange(out_w, dtype=x.dtype, device=x.device)
    ys = top[:, None] + (i[None] + .5) * h[:, None] / out_h - .5  # [B, H']
    xs = left[:, None] + (j[None] + .5) * w[:, None] / out_w - .5  # [B, W']
    # pixel p -> normalised (2p + 1) / size - 1 (align_corners=False)
    gy = (2 * ys + 1) / H - 1
    gx = (2 * xs + 1) / W - 1
    grid = torch.stack(
        [gx[:, None, :].expand(B, out_h, out_w),
         gy[:, :, None].expand(B, out_h, out_w)], dim=-1)  # [B, H', W', 2]
    return F.grid_sample(
        x, grid, mode='bilinear', padding_mode='border', align_corners=False)


def hflip(x: Tensor, flip: Tensor) -> Tensor:
    """Mirror the images where ``flip`` ``[B]`` (bool) is true."""
    return torch.where(flip.view(-1, 1, 1, 1).to(x.device), x.flip(-1), x)


def grey(x: Tensor) -> Tensor:
    """Luma ``[B, 1, H, W]`` of RGB ``x``."""
    w = x.new_tensor(GREY_WEIGHTS).view(1, 3, 1, 1)
    return (x[:, :3] * w).sum(1, keepdim=True)


def _blend(a: Tensor, b: Tensor, factor: Tensor) -> Tensor:
    """``factor * a + (1 - factor) * b`` clamped to [0, 1]; ``factor``
    per sample."""
    f = factor.view(-1, 1, 1, 1).to(a)
    return (f * a + (1 - f) * b).clamp(0, 1)


def adjust_brightness(x: Tensor, factor: Tensor) -> Tensor:
    return _blend(x, torch.zeros_like(x), factor)


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    mean = grey(x).mean((1, 2, 3), keepdim=True)  # [B, 1, 1, 1]
    return _blend(x, mean.expand_as(x), factor)


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    return _blend(x, grey(x).expand_as(x), factor)


def rgb_to_hsv(x: Tensor) -> Tensor:
    """``[B, 3, H, W]`` RGB in [0, 1] -> HSV, hue in [0, 1)."""
    r, g, b = x.unbind(1)
    maxc, _ = x.max(1)
    minc, _ = x.min(1)
    delta = maxc - minc
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12),
                    torch.zeros_like(maxc))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc,
                    torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack([h, s, maxc], 1)


def hsv_to_rgb(x: Tensor) -> Tensor:
    """Inverse of :func:`rgb_to_hsv`."""
    h, s, v = x.unbind(1)
    i = torch.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.long() % 6
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = torch.stack([
        torch.stack([v, q, p, p, t, v], 1),
        torch.stack([t, v, v, q, p, p], 1),
        torch.stack([p, p, t, v, v, q], 1)
    ], 1)  # [B, 3, 6, H, W]
    idx = i[:, None, None].expand(-1, 3, 1, -1, -1)
    return table.gather(2, idx).squeeze(2)


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate hue by ``shift`` (per sample, in turns, within [-0.5, 0.5])."""
    hsv = rgb_to_hsv(x)
    h = (hsv[:, 0] + shift.view(-1, 1, 1).to(x)) % 1.0
    return hsv_to_rgb(torch.stack([h, hsv[:, 1], hsv[:, 2]], 1))


def to_grayscale(x: Tensor, mask: Tensor) -> Tensor:
    """Grey (repeated on 3 channels) where ``mask`` ``[B]`` is true."""
    g = grey(x).expand_as(x)
    return torch.where(mask.view(-1, 1, 1, 1).to(x.device), g, x)


def gaussian_kernels(sigma: Tensor, kernel_size: int) -> Tensor:
    """Normalised 1-D Gaussians ``[B, k]``, one per ``sigma``."""
    half = (kernel_size - 1) / 2
    t = torch.linspace(-half, half, kernel_size, dtype=sigma.dtype,
                       device=sigma.device)
    k = torch.exp(-0.5 * (t[None] / sigma[:, None])**2)
    return k / k.sum(1, keepdim=True)


def gaussian_blur(x: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Separable Gaussian blur with one ``sigma`` per image (reflect
    padding); ``sigma <= 0`` leaves that image unchanged."""
    if kernel_size % 2 == 0 or kernel_size < 1:
        raise ValueError(f'kernel_size={kernel_size} must be odd and >= 1')
    B, C, H, W = x.shape
    k = gaussian_kernels(sigma.clamp_min(1e-6).to(x), kernel_size)
    k = k.repeat_interleave(C, 0)  # [B*C, k]
    pad = kernel_size // 2
    flat = x.reshape(1, B * C, H, W)
    flat = F.pad(flat, (pad, pad, 0, 0), mode='reflect')
    flat = F.conv2d(flat, k.view(B * C, 1, 1, -1), groups=B * C)
    flat = F.pad(flat, (0, 0, pad, pad), mode='reflect')
    flat = F.conv2d(flat, k.view(B * C, 1, -1, 1), groups=B * C)
    out = flat.view(B, C, H, W)
    return torch.where((sigma > 0).view(-1, 1, 1, 1).to(x.device), out, x)


def rotate(x: Tensor, degrees: Tensor) -> Tensor:
    """Rotate each image about its centre by ``degrees`` (counter-clockwise,
    bilinear, zeros outside)."""
    B = x.shape[0]
    rad = degrees.to(x) * math.pi / 180
    cos, sin = rad.cos(), rad.sin()
    H, W = x.shape[-2:]
    # output -> input coordinates, in the normalised frame of each axis
    theta = torch.zeros(B, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = cos
    theta[:, 0, 1] = -sin * H / W
    theta[:, 1, 0] = sin * W / H
    theta[:, 1, 1] = cos
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False)


def cutout(x: Tensor, boxes: Tensor, fill: float = 0.5) -> Tensor:
    """Fill each image's box ``(top, left, h, w)`` (integers) with
    ``fill``."""
    B, _, H, W = x.shape
    top, left, h, w = boxes.to(x.device).long().unbind(1)
    yy = torch.arange(H, device=x.device)[None, :, None]
    xx = torch.arange(W, device=x.device)[None, None, :]
    inside = ((yy >= top[:, None, None]) & (yy < (top + h)[:, None, None]) &
              (xx >= left[:, None, None]) & (xx < (left + w)[:, None, None]))
    return torch.where(inside[:, None], torch.full_like(x, fill), x)


def grid_distortion(x: Tensor, offsets: Tensor) -> Tensor:
    """Warp each image by a smooth displacement field: ``offsets``
    ``[B, 2, g + 1, g + 1]`` (x then y, in normalised units where the image
    spans [-1, 1]) at a coarse grid of control points, interpolated
    bilinearly to every pixel; borders repeat. Zero offsets: identity."""
    B, _, H, W = x.shape
    flow = F.interpolate(offsets.to(x), size=(H, W), mode='bilinear',
                         align_corners=True)  # [B, 2, H, W]
    ys = (2 * torch.arange(H, dtype=x.dtype, device=x.device) + 1) / H - 1
    xs = (2 * torch.arange(W, dtype=x.dtype, device=x.device) + 1) / W - 1
    base = torch.stack(torch.meshgrid(xs, ys, indexing='xy'), -1)  # [H,W,2]
    grid = base[None] + flow.permute(0, 2, 3, 1)
    return F.grid_sample(x, grid, mode='bilinear', padding_mode='border',
                         align_corners=False)


def solarize(x: Tensor, threshold: Tensor) -> Tensor:
    """Invert pixels at or above ``threshold`` (per sample)."""
    t = threshold.view(-1, 1, 1, 1).to(x)
    return torch.where(x >= t, 1 - x, x)


def posterize(x: Tensor, bits: Tensor) -> Tensor:
    """Keep the ``bits`` (per sample, 1-8) high bits of 8-bit pixels."""
    levels = (2**bits.to(x)).view(-1, 1, 1, 1)
    return torch.floor(x * 255 / (256 / levels)) * (256 / levels) / 255
