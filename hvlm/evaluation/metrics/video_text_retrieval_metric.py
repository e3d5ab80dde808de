"""Zero-shot classification and text-video retrieval from embeddings."""
from math import comb
from typing import Dict, List, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from hvlm.registry import METRICS
from .recognition_metric import mean_class_accuracy


def ranks_of(scores: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """1-based rank of the best correct candidate of each query.

    ``scores [Q, N]`` and a boolean ``correct [Q, N]`` (at least one True
    per row). Ties count against the query: the rank is one plus the number
    of wrong candidates scoring at least the best correct one's score, so a
    model that scores everything alike ranks last, never first.
    """
    best = np.where(correct, scores, -np.inf).max(1)  # [Q]
    wrong_above = ((scores >= best[:, None]) & ~correct).sum(1)
    return wrong_above + 1


def chance_recall(num_correct: np.ndarray, total: int, k: int) -> float:
    """Expected R@k of a random ranking: a query with ``m`` correct of
    ``total`` candidates finds one in its top ``k`` with probability
    ``1 - C(total - m, k) / C(total, k)``; averaged over the queries."""
    k = min(k, total)
    return float(
        np.mean([
            1 - comb(total - int(m), k) / comb(total, k) for m in num_correct
        ]))


@METRICS.register_module()
class VideoTextRetrievalMetric(BaseMetric):
    """What a video-text model has learned, without training a classifier.

    Reads each data sample's ``pred_video_embed``, ``pred_text_embed``,
    ``pred_class_scores`` and metainfo ``text``, ``caption``, ``label_id``
    (as :class:`VideoTextContrastive` and :class:`VideoTextDataset` write
    them).

    - Zero-shot classification over the samples with a label: ``top1``
      (the class whose text scores highest is the label) and ``mean_class``
      (MMAction2's mean class accuracy, see :func:`mean_class_accuracy`),
      beside ``chance_top1`` (1 / classes).
    - Retrieval over the samples paired with a caption. Equal captions are
      one text (demo captions repeat across videos): the gallery of
      text-to-video (``t2v``) is every such video, and a text's correct
      videos are all those with that caption; video-to-text (``v2t``)
      ranks every distinct caption, one correct. ``R@1/5/10`` (percent of
      queries whose best correct item is in the top K), ``medr`` (median
      rank) and the expected recall of a random ranking (``chance_R@K``),
      with ties ranked against the query (:func:`ranks_of`).
    """
    default_prefix = 'vtc'

    def __init__(self, ks: Sequence[int] = (1, 5, 10), **kwargs) -> None:
        super().__init__(**kwargs)
        self.ks = tuple(int(k) for k in ks)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            # the Evaluator hands data samples over as dicts (to_dict():
            # metainfo and data fields together)
            if not isinstance(sample, dict):
                sample = sample.to_dict()
            scores = sample.get('pred_class_scores')
            self.results.append(
                dict(
                    video=np.asarray(sample['pred_video_embed'].cpu(),
                                     dtype=np.float32),
                    text_embed=np.asarray(sample['pred_text_embed'].cpu(),
                                          dtype=np.float32),
                    text=sample.get('text'),
                    caption=sample.get('caption'),
                    label_id=int(sample.get('label_id', -1)),
                    class_scores=None if scores is None else np.asarray(
                        scores.cpu(), dtype=np.float32)))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        out: Dict[str, float] = {}
        labelled = [
            r for r in results
            if r['label_id'] >= 0 and r['class_scores'] is not None
        ]
        if labelled:
            scores = np.stack([r['class_scores'] for r in labelled])
            labels = np.array([r['label_id'] for r in labelled])
            pred = scores.argmax(1)
            num_classes = scores.shape[1]
            out['top1'] = float((pred == labels).mean() * 100)
            out['mean_class'] = mean_class_accuracy(scores, labels) * 100
            out['chance_top1'] = 100. / num_classes
        paired = [
            r for r in results
            if r['caption'] is not None and r['text'] == r['caption']
        ]
        if len(paired) > 1:
            texts = sorted({r['caption'] for r in paired})
            index = {t: i for i, t in enumerate(texts)}
            first = {}
            for r in paired:
                first.setdefault(r['caption'], r['text_embed'])
            T = np.stack([first[t] for t in texts])  # [U, D]
            V = np.stack([r['video'] for r in paired])  # [N, D]
            owner = np.array([index[r['caption']] for r in paired])  # [N]
            sim = V @ T.T  # [N, U]
            v2t_correct = owner[:, None] == np.arange(len(texts))[None]
            for name, scores, correct in (('v2t', sim, v2t_correct),
                                          ('t2v', sim.T, v2t_correct.T)):
                ranks = ranks_of(scores, correct)
                for k in self.ks:
                    out[f'{name}_R@{k}'] = float((ranks <= k).mean() * 100)
                    out[f'{name}_chance_R@{k}'] = chance_recall(
                        correct.sum(1), correct.shape[1], k) * 100
                out[f'{name}_medr'] = float(np.median(ranks))
            out['num_texts'] = float(len(texts))
            out['num_videos'] = float(len(paired))
        return out
