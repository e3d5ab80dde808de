"""RoIAlign (Mask R-CNN) in plain torch: no compiled op, no torchvision.

The definition followed is torchvision's / Detectron2's ``roi_align``:

- a box ``(x1, y1, x2, y2)`` in input pixels is scaled by
  ``spatial_scale``; with ``aligned=True`` half a pixel is subtracted so
  that pixel centres sit at integer + 0.5 (the box is not rounded); with
  ``aligned=False`` (the original) its size is clamped to at least 1;
- the box is cut into ``output_size`` bins; each bin averages a regular
  grid of ``sampling_ratio x sampling_ratio`` samples, or, when
  ``sampling_ratio <= 0``, ``ceil(bin size)`` samples per axis, chosen
  per box;
- a sample is bilinearly interpolated; one more than a pixel outside the
  map it is 0, otherwise coordinates below 0 are clamped to 0 and those
  beyond the last pixel centre to it.

torchvision's op is used when importable (GPU users have it); the torch
implementation below is the one every test and CPU run exercises, and is
differentiable with respect to the features.
"""
import math
from typing import List, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = ['roi_align', 'boxes_to_rois']


def boxes_to_rois(boxes: Sequence[Tensor]) -> Tensor:
    """Per-image boxes ``[K_i, 4]`` -> rois ``[sum K_i, 5]`` (index first)."""
    rois = [
        torch.cat([b.new_full((b.shape[0], 1), float(i)), b], dim=1)
        for i, b in enumerate(boxes)
    ]
    return torch.cat(rois) if rois else torch.zeros(0, 5)


def _axis_samples(start: Tensor, size: Tensor, bins: int,
                  grid: int) -> Tensor:
    """Sample coordinates ``[K, bins * grid]`` along one axis."""
    bin_size = size / bins  # [K]
    steps = torch.arange(bins, device=start.device, dtype=start.dtype)
    sub = (torch.arange(grid, device=start.device, dtype=start.dtype) +
           0.5) / grid
    offs = (steps[:, None] + sub[None, :]).reshape(-1)  # [bins * grid]
    return start[:, None] + offs[None, :] * bin_size[:, None]


def _corners(coord: Tensor, length: int) -> Tuple[Tensor, ...]:
    """Low/high indices and weights of bilinear interpolation, plus the
    validity of each sample, along one axis (all ``[K, S]``)."""
    valid = (coord >= -1.0) & (coord <= length)
    c = coord.clamp(min=0)
    low = c.floor().long()
    at_end = low >= length - 1
    low = torch.where(at_end, torch.full_like(low, length - 1), low)
    high = torch.where(at_end, low, low + 1)
    c = torch.where(at_end, low.to(c.dtype), c)
    frac = c - low.to(c.dtype)
    return low, high, 1 - frac, frac, valid


def _roi_align_group(feats: Tensor, rois: Tensor, out_h: int, out_w: int,
                     scale: float, grid_h: int, grid_w: int,
                     aligned: bool) -> Tensor:
    N, C, H, W = feats.shape
    offset = 0.5 if aligned else 0.0
    x1 = rois[:, 1] * scale - offset
    y1 = rois[:, 2] * scale - offset
    w = rois[:, 3] * scale - offset - x1
    h = rois[:, 4] * scale - offset - y1
    if not aligned:
        w, h = w.clamp(min=1.0), h.clamp(min=1.0)
    ys = _axis_samples(y1, h, out_h, grid_h)  # [K, out_h * grid_h]
    xs = _axis_samples(x1, w, out_w, grid_w)  # [K, out_w * grid_w]
    y_lo, y_hi, y_wl, y_wh, y_ok = _corners(ys, H)
    x_lo, x_hi, x_wl, x_wh, x_ok = _corners(xs, W)
    flat = feats.permute(0, 2, 3, 1).reshape(N * H * W, C)  # [NHW, C]
    base = rois[:, 0].long()[:, None, None] * (H * W)  # [K, 1, 1]
    K, Sy, Sx = rois.shape[0], ys.shape[1], xs.shape[1]
    out = feats.new_zeros(K, Sy, Sx, C)
    for yi, wy in ((y_lo, y_wl), (y_hi, y_wh)):
        for xi, wx in ((x_lo, x_wl), (x_hi, x_wh)):
            index = base + yi[:, :, None] * W + xi[:, None, :]  # [K, Sy, Sx]
            weight = wy[:, :, None] * wx[:, None, :]  # [K, Sy, Sx]
            out = out + flat[index.reshape(-1)].reshape(K, Sy, Sx, C) * \
                weight[..., None].to(feats.dtype)
    valid = (y_ok[:, :, None] & x_ok[:, None, :])[..., None]
    out = out * valid.to(out.dtype)
    out = out.reshape(K, out_h, grid_h, out_w, grid_w, C).mean(dim=(2, 4))
    return out.permute(0, 3, 1, 2).contiguous()  # [K, C, out_h, out_w]


def _torchvision_roi_align():
    try:
        from torchvision.ops import roi_align as tv_roi_align  # noqa
        return tv_roi_align
    except Exception:  # absent, or installed without its compiled ops
        return None


def roi_align(feats: Tensor,
              rois: Union[Tensor, List[Tensor]],
              output_size: Union[int, Tuple[int, int]],
              spatial_scale: float = 1.0,
              sampling_ratio: int = -1,
              aligned: bool = False,
              use_torchvision: bool = False) -> Tensor:
    """Pool ``output_size`` features from each region of interest.

    Args:
        feats (Tensor): Feature maps ``[N, C, H, W]``.
        rois (Tensor | list[Tensor]): ``[K, 5]`` rows ``(image index, x1,
            y1, x2, y2)`` in input pixels, or a list of ``[K_i, 4]`` boxes
            per image.
        output_size (int | tuple): ``(out_h, out_w)``.
        spatial_scale (float): Feature-map size / input size.
        sampling_ratio (int): Samples per bin and axis; ``<= 0`` adapts it
            to each box (``ceil(bin size)``).
        aligned (bool): Shift boxes by -0.5 pixel (see the module doc).
        use_torchvision (bool): Use torchvision's compiled op when it is
            importable (same definition, faster on GPU).

    Returns:
        Tensor: ``[K, C, out_h, out_w]``.
    """
    if isinstance(rois, (list, tuple)):
        rois = boxes_to_rois(rois)
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    out_h, out_w = (int(v) for v in output_size)
    if rois.dim() != 2 or rois.shape[1] != 5:
        raise ValueError(f'rois has shape {tuple(rois.shape)}, expected '
                         '[K, 5] rows (image index, x1, y1, x2, y2)')
    rois = rois.to(device=feats.device).detach()
    if use_torchvision:
        tv = _torchvision_roi_align()
        if tv is not None:
            return tv(feats, rois.to(feats.dtype), (out_h, out_w),
                      spatial_scale, sampling_ratio, aligned)
    K, C = rois.shape[0], feats.shape[1]
    out = feats.new_zeros(K, C, out_h, out_w)
    if K == 0:
        return out
    rois = rois.to(torch.float64 if feats.dtype == torch.float64 else
                   torch.float32)
    if sampling_ratio > 0:
        groups = {(sampling_ratio, sampling_ratio): torch.arange(K)}
    else:
        w = (rois[:, 3] - rois[:, 1]) * spatial_scale
        h = (rois[:, 4] - rois[:, 2]) * spatial_scale
        if not aligned:
            w, h = w.clamp(min=1.0), h.clamp(min=1.0)
        gh = [math.ceil(v) for v in (h / out_h).tolist()]
        gw = [math.ceil(v) for v in (w / out_w).tolist()]
        groups = {}
        for k, key in enumerate(zip(gh, gw)):
            groups.setdefault(key, []).append(k)
        groups = {k: torch.tensor(v) for k, v in groups.items()}
    for (grid_h, grid_w), idx in groups.items():
        if grid_h <= 0 or grid_w <= 0:  # a degenerate box samples nothing
            continue
        out[idx] = _roi_align_group(feats, rois[idx], out_h, out_w,
                                    spatial_scale, grid_h, grid_w, aligned)
    return out
