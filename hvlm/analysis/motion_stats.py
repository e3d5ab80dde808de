"""How fast a dataset's clips move, as the token merger measures it.

``AdaptiveTokenMerger`` scales each clip's motion by its fastest token,
but never by less than ``motion.min_motion`` (patches per frame), so that
a static clip's flow noise is not blown up to full importance. The right
floor depends on the data: it should sit above what the flow reports for
a clip that does not move and below what the clips that do move reach.
:func:`motion_stats` measures both on a config's own data: every clip's
fastest token, and the same for a static copy of the clip (its first
frame repeated), through the merger's own cue path.
"""
import copy
from typing import Dict, List, Optional, Sequence

import torch

from hvlm.registry import MODELS

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 1.0)


def _backbone_and_motion_merger(model: torch.nn.Module):
    backbone = getattr(model, 'backbone', None)
    merger = getattr(backbone, 'merger', None)
    if merger is None or not hasattr(merger, 'frame_cues') or not getattr(
            merger, 'motion_enabled', False):
        raise ValueError(
            'the config\'s model.backbone.merger has no motion cue; use an '
            "AdaptiveTokenMerger with motion=dict(enabled=True), e.g. "
            'configs/token_merging/hier_sports_adaptive.py')
    return backbone, merger


@torch.no_grad()
def motion_stats(model_cfg: dict,
                 dataset: Sequence[dict],
                 batch_size: int = 8,
                 max_videos: Optional[int] = None) -> Dict[str, object]:
    """Every clip's fastest token, in patches per frame.

    Args:
        model_cfg (dict): The config's ``model``; its data preprocessor
            and its backbone's merger are used (weights are not needed:
            the cues are computed on the frames).
        dataset: Items as the config's pipeline produces them
            (``inputs``, ``data_samples``).
        batch_size (int): Videos per forward.
        max_videos (int, optional): Read only the first videos.

    Returns:
        dict: ``min_motion`` (the configured floor), ``moving`` and
        ``static`` (per-clip fastest token speed of the clips and of their
        static copies), ``num_clips``.
    """
    from hvlm.datasets.collate import video_collate

    model = MODELS.build(copy.deepcopy(model_cfg)).eval()
    backbone, merger = _backbone_and_motion_merger(model)
    floor = merger.magnitude.min_motion
    merger.magnitude.normalize = False  # raw speeds, patches per frame
    patch = backbone.patch_embed.patch_size
    count = len(dataset) if max_videos is None else min(
        max_videos, len(dataset))
    moving: List[torch.Tensor] = []
    static: List[torch.Tensor] = []
    for start in range(0, count, batch_size):
        batch = video_collate(
            [dataset[i] for i in range(start, min(start + batch_size, count))])
        clips = model.data_preprocessor(batch, False)['inputs']
        if clips.dim() == 6:  # [B, num_clips, C, T, H, W]
            clips = clips.flatten(0, 1)
        T, H, W = clips.shape[2:]
        grid = (T // patch[0], H // patch[1], W // patch[2])
        still = clips[:, :, :1].expand_as(clips)
        for frames, out in ((clips, moving), (still, static)):
            out.append(merger.frame_cues(frames, grid)['motion'].amax(1))
    return dict(
        min_motion=floor,
        num_clips=sum(len(m) for m in moving),
        moving=torch.cat(moving).tolist(),
        static=torch.cat(static).tolist())


def format_motion_stats(result: Dict[str, object]) -> str:
    """A Markdown table of quantiles, and the share of clips under the
    floor."""
    floor = result['min_motion']
    lines = [
        'fastest token per clip, patches per frame '
        f'({result["num_clips"]} clips; motion.min_motion={floor})', '',
        '| clips | ' + ' | '.join(f'q{q:g}' for q in QUANTILES) +
        ' | share under min_motion |',
        '|---' * (len(QUANTILES) + 2) + '|'
    ]
    for name in ('moving', 'static'):
        values = torch.tensor(result[name])
        qs = torch.quantile(values, torch.tensor(QUANTILES))
        under = (values < floor).float().mean().item()
        label = 'as recorded' if name == 'moving' else \
            'static copies (first frame repeated)'
        lines.append(f'| {label} | ' +
                     ' | '.join(f'{q:.3f}' for q in qs.tolist()) +
                     f' | {under:.1%} |')
    return '\n'.join(lines)
