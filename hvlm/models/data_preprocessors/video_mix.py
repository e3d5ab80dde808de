"""VideoMix: CutMix for videos, as a batch augment."""
from typing import List, Tuple

import torch
from torch import Tensor

from hvlm.registry import MODELS

MIX_TYPES = ('spatial', 'temporal')


@MODELS.register_module()
class VideoMix:
    """Paste a region of another video of the batch into each video
    (Yun et al., 2020).

    - ``'spatial'``: one box, held through every frame (and view).
    - ``'temporal'``: a span of whole frames.

    The box (or span) is drawn from ``lam ~ Beta(alpha, alpha)`` as in
    CutMix, then clipped to the frame; the label weight is the **actual**
    share of the volume kept, ``1 - pasted / total``, not the drawn
    ``lam``. Each data sample gets ``mix_label`` (the partner's label) and
    ``mix_lambda`` (the kept share); the loss weighs the two labels by it.

    Args:
        mix_type (str): ``'spatial'`` or ``'temporal'``.
        alpha (float): Beta distribution parameter.
    """

    def __init__(self, mix_type: str = 'spatial', alpha: float = 1.0) -> None:
        if mix_type not in MIX_TYPES:
            raise ValueError(f'videomix_type={mix_type!r} must be one of '
                             f'{MIX_TYPES} or None')
        if alpha <= 0:
            raise ValueError(f'VideoMix: alpha={alpha} must be > 0')
        self.mix_type = mix_type
        self.alpha = float(alpha)

    def region(self, shape: Tuple[int, ...]) -> Tuple[slice, slice, slice]:
        """Slices ``(t, y, x)`` of the pasted region for ``[.., T, H, W]``."""
        T, H, W = shape[-3:]
        lam = float(torch.distributions.Beta(self.alpha,
                                             self.alpha).sample())
        full = slice(None)
        if self.mix_type == 'temporal':
            span = int(round(T * (1 - lam)))
            start = int(torch.randint(0, T - span + 1, ()))
            return slice(start, start + span), full, full
        ratio = (1 - lam)**0.5
        ch, cw = int(H * ratio), int(W * ratio)
        cy, cx = int(torch.randint(0, H, ())), int(torch.randint(0, W, ()))
        y1, y2 = max(cy - ch // 2, 0), min(cy + ch - ch // 2, H)
        x1, x2 = max(cx - cw // 2, 0), min(cx + cw - cw // 2, W)
        return full, slice(y1, y2), slice(x1, x2)

    def __call__(self, inputs: Tensor,
                 data_samples: List) -> Tuple[Tensor, List]:
        """Mix ``inputs [B, V, C, T, H, W]``; returns the mixed batch and
        the samples with ``mix_label`` / ``mix_lambda`` set."""
        B = inputs.shape[0]
        perm = torch.randperm(B)
        t, y, x = self.region(inputs.shape)
        mask = torch.zeros(inputs.shape[-3:], dtype=torch.bool,
                           device=inputs.device)
        mask[t, y, x] = True  # [T, H, W]
        kept = 1.0 - float(mask.float().mean())
        mixed = torch.where(mask, inputs[perm.to(inputs.device)], inputs)
        labels = [int(s.gt_label.reshape(-1)[0]) for s in data_samples]
        for i, sample in enumerate(data_samples):
            sample.set_metainfo(dict(mix_label=labels[int(perm[i])],
                                     mix_lambda=kept))
        return mixed, data_samples
