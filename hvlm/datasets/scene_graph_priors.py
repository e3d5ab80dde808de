"""Spatial co-occurrence and temporal transition counts of Action Genome
predicates (STKET's priors), from a split's annotations.

A pass over data infos (``ActionGenomeDataset.get_data_info``: no frame is
read). Predicates are the 26 of Action Genome in their order: attention
(one per object, one-hot), spatial and contacting (multi-hot).

- ``cooccurrence [K, 26]``: per object class, how many of its objects carry
  each predicate; ``objects [K]`` how many objects of the class there are.
- ``transition [K, 26, 26]``: per object class, how often predicate ``p``
  in one kept frame is followed by ``q`` in the next kept frame of the
  same video, for the same object (the first object of that class in each
  frame, as Action Genome has one object per class and frame almost
  always); ``transition_from [K, 26]`` how often ``p`` had a next frame.
"""
from typing import Dict, Iterable

import numpy as np

NUM_ATTENTION = 3
NUM_PREDICATES = 26


def predicate_multi_hot(attention, spatial, contacting) -> np.ndarray:
    """``[M, 26]`` from attention indices ``[M]`` and the multi-hot
    spatial ``[M, 6]`` and contacting ``[M, 17]``."""
    attention = np.asarray(attention, dtype=np.int64)
    att = np.eye(NUM_ATTENTION, dtype=np.float64)[attention]
    return np.concatenate([att, np.asarray(spatial, dtype=np.float64),
                           np.asarray(contacting, dtype=np.float64)], 1)


def count_scene_priors(videos: Iterable[dict],
                       num_classes: int) -> Dict[str, np.ndarray]:
    """Count the priors of ``videos`` (data infos with ``obj_frames``,
    ``obj_labels``, ``attention``, ``spatial``, ``contacting``)."""
    K, R = num_classes, NUM_PREDICATES
    counts = dict(cooccurrence=np.zeros((K, R)), objects=np.zeros(K),
                  transition=np.zeros((K, R, R)),
                  transition_from=np.zeros((K, R)))
    for v in videos:
        labels = np.asarray(v['obj_labels'], dtype=np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= K):
            raise ValueError(
                f'count_scene_priors: video {v.get("video_id", "?")!r} has '
                f'object labels outside [0, {K}) (num_classes={K})')
        frames = np.asarray(v['obj_frames'], dtype=np.int64)
        y = predicate_multi_hot(v['attention'], v['spatial'],
                                v['contacting'])  # [M, 26]
        np.add.at(counts['cooccurrence'], labels, y)
        np.add.at(counts['objects'], labels, 1)
        first = {}  # (frame, class) -> the first object's row
        for i, (f, c) in enumerate(zip(frames.tolist(), labels.tolist())):
            first.setdefault((f, c), i)
        for (f, c), i in first.items():
            j = first.get((f - 1, c))
            if j is not None:
                counts['transition'][c] += np.outer(y[j], y[i])
                counts['transition_from'][c] += y[j]
    return counts
