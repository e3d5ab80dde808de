"""K-shot subsets and base-to-novel class splits."""
import logging
from typing import Dict, List, Sequence

import numpy as np
from mmengine.logging import print_log

ON_FEW_VIDEOS = ('take', 'error')


def k_shot_indices(labels: Sequence[int],
                   classes: Sequence[str],
                   k: int,
                   seed: int,
                   on_few_videos: str = 'take',
                   source: str = '') -> List[int]:
    """Draw ``k`` videos per class, at random but reproducibly.

    The draw depends only on ``(labels, k, seed)``: a generator seeded with
    ``seed`` picks, class by class in label order, ``k`` of the class's
    positions without replacement. Every run and every rank (each builds
    the dataset from the same file) gets the same subset; another seed
    gives another subset, as the few-shot protocol's repeated runs need.

    Args:
        labels (Sequence[int]): The label of every video, in file order.
        classes (Sequence[str]): Class names, for messages.
        k (int): Videos per class.
        seed (int): Seed of the draw.
        on_few_videos (str): A class with fewer than ``k`` videos keeps all
            it has (``'take'``, with a warning naming it) or is an error
            (``'error'``).
        source (str): The annotation file, for messages.

    Returns:
        list[int]: Sorted positions of the kept videos.
    """
    if not isinstance(k, int) or k < 1:
        raise ValueError(f'K-shot: k={k!r} must be a positive integer (or '
                         'None for every video)')
    if on_few_videos not in ON_FEW_VIDEOS:
        raise ValueError(f'on_few_videos={on_few_videos!r} must be one of '
                         f'{ON_FEW_VIDEOS}')
    by_class: Dict[int, List[int]] = {}
    for pos, label in enumerate(labels):
        by_class.setdefault(int(label), []).append(pos)
    rng = np.random.default_rng(seed)
    kept: List[int] = []
    short = []
    for label in range(len(classes)):
        positions = by_class.get(label, [])
        if len(positions) <= k:
            if len(positions) < k:
                short.append((classes[label], len(positions)))
            kept.extend(positions)
            continue
        chosen = rng.choice(len(positions), size=k, replace=False)
        kept.extend(positions[i] for i in sorted(chosen))
    if short:
        listing = ', '.join(f'{name!r} has {n}' for name, n in short)
        msg = (f'{source}: K={k} videos per class, but {listing}')
        if on_few_videos == 'error':
            raise ValueError(msg + "; set on_few_videos='take' to use what "
                             'there is, or a smaller K')
        print_log(msg + '; all of them are used', logger='current',
                  level=logging.WARNING)
    return sorted(kept)


def base_novel_classes(num_classes: int, subset: str) -> List[int]:
    """Labels of the ``'base'`` half (the first ``ceil(n / 2)`` labels, in
    the dataset's label order, as CoCoOp and ViFi-CLIP split) or the
    ``'novel'`` half (the rest)."""
    half = (num_classes + 1) // 2
    if subset == 'base':
        return list(range(half))
    if subset == 'novel':
        return list(range(half, num_classes))
    raise ValueError(f"class_subset={subset!r} must be 'base', 'novel' or "
                     'None')
