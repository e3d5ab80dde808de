"""The frequency baseline: predicates from the object class alone.

For every object class, counted over the training split: the distribution
of its attention predicate, and for each spatial and contacting predicate
the fraction of its objects that carry it. In PredCLS every pair of a test
frame is scored with its object class's frequencies, so the ranking the
evaluator sees is "the most frequent predicates for this class". No pixel
is read; a model that looks must beat it.
"""
from typing import Dict, Iterable, List

import numpy as np
import torch

NUM_ATT, NUM_SPA, NUM_CON = 3, 6, 17
PERSON = 1


class FrequencyBaseline:
    """Count on training videos (:meth:`fit`), score test videos
    (:meth:`predict`) in the format of :class:`SceneGraphRecall`.

    Args:
        num_classes (int): Object classes incl. background and person.
        smoothing (float): Added to every count (classes unseen in training
            get the overall frequencies through it).
    """

    def __init__(self, num_classes: int = 37, smoothing: float = 1e-3):
        self.num_classes = num_classes
        self.smoothing = smoothing
        self.attention = np.zeros((num_classes, NUM_ATT))
        self.spatial = np.zeros((num_classes, NUM_SPA))
        self.contacting = np.zeros((num_classes, NUM_CON))
        self.objects = np.zeros(num_classes)

    def fit(self, videos: Iterable[dict]) -> 'FrequencyBaseline':
        """Count the ground truth of ``videos`` (``ActionGenomeDataset``
        data infos or packed samples)."""
        for v in videos:
            labels = np.asarray(v['obj_labels'])
            np.add.at(self.objects, labels, 1)
            np.add.at(self.attention, (labels, np.asarray(v['attention'])),
                      1)
            np.add.at(self.spatial, labels, np.asarray(v['spatial']))
            np.add.at(self.contacting, labels, np.asarray(v['contacting']))
        return self

    def probabilities(self) -> Dict[str, np.ndarray]:
        """Per class: attention distribution ``[K, 3]`` and label
        frequencies ``[K, 6]``, ``[K, 17]``; unseen classes get the
        frequencies over all classes."""
        n = self.objects[:, None]
        total = self.objects.sum()
        out = {}
        for name, counts in (('attention', self.attention),
                             ('spatial', self.spatial),
                             ('contacting', self.contacting)):
            overall = counts.sum(0) / max(total, 1)
            p = np.where(n > 0, counts / np.maximum(n, 1), overall[None])
            out[name] = p + self.smoothing
        out['attention'] /= out['attention'].sum(1, keepdims=True)
        return out

    def predict(self, videos: Iterable[dict]) -> List[dict]:
        """Ground-truth boxes and labels (PredCLS) with class-frequency
        predicate scores; returns the samples with ``pred_*`` keys."""
        p = self.probabilities()
        out = []
        for v in videos:
            person = torch.as_tensor(np.asarray(v['person_boxes']))
            objs = torch.as_tensor(np.asarray(v['obj_boxes']))
            of = np.asarray(v['obj_frames'])
            labels = np.asarray(v['obj_labels'])
            T, M = len(person), len(objs)
            out.append(dict(
                v,
                pred_boxes=torch.cat([person, objs]).float(),
                pred_box_frames=torch.from_numpy(np.concatenate(
                    [np.arange(T), of])),
                pred_labels=torch.from_numpy(np.concatenate(
                    [np.full(T, PERSON), labels])),
                pred_scores=torch.ones(T + M),
                pred_pairs=torch.from_numpy(np.stack(
                    [of, T + np.arange(M)], 1)),
                pred_attention=torch.from_numpy(p['attention'][labels]),
                pred_spatial=torch.from_numpy(p['spatial'][labels]),
                pred_contacting=torch.from_numpy(p['contacting'][labels])))
        return out
