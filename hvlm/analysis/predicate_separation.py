"""How well a scene-graph model's score of one predicate separates the pairs
that have it from those that do not, among the pairs of another predicate.

Recall cannot show it for a predicate that always comes with another:
in the demo data every ``carrying`` pair is also ``holding``, so with the
constraint (one contacting predicate per pair) ``carrying`` is never
recalled whatever the model knows, and without it a model that scores
``carrying`` at a constant 0.5 is recalled about as often as one that
tells walking from standing. The ROC AUC of the ``carrying`` score among
the ``holding`` pairs asks the question directly: 0.5 is chance (a
per-frame model, if one frame cannot tell), 1.0 a perfect ranking.
"""
from typing import Dict, Iterable, Optional, Sequence

import numpy as np

__all__ = ['roc_auc', 'predicate_separation']

GROUPS = ('attention', 'spatial', 'contacting')


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random positive
    scores above a random negative, ties counting one half
    (Mann-Whitney). NaN without positives or negatives."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, bool)
    pos, neg = scores[labels], scores[~labels]
    if len(pos) == 0 or len(neg) == 0:
        return float('nan')
    above = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((above + 0.5 * ties) / (len(pos) * len(neg)))


def _column(sample: dict, name: str, predicates: Sequence[str],
            groups: Sequence[int], prefix: str = '') -> np.ndarray:
    """The ``[M]`` column of predicate ``name`` (ground truth, or the
    prediction with ``prefix='pred_'``)."""
    index = list(predicates).index(name)
    start = 0
    for group, size in zip(GROUPS, groups):
        if index < start + size:
            values = np.asarray(sample[prefix + group])
            if group == 'attention' and not prefix:  # class indices
                return (values == index - start).astype(np.float64)
            return values[:, index - start].astype(np.float64)
        start += size
    raise AssertionError('unreachable')


def predicate_separation(samples: Iterable[dict],
                         predicate: str,
                         within: Optional[str] = None,
                         predicates: Sequence[str] = (),
                         groups: Sequence[int] = (3, 6, 17)) -> Dict:
    """ROC AUC of ``predicate``'s predicted score against its ground truth,
    over the pairs whose ground truth has ``within`` (all pairs if None).

    Args:
        samples: Predicted videos (a model's ``predict`` output) of a mode
            whose pairs are the ground-truth objects in order (PredCLS,
            SGCLS).
        predicates: All predicate names in group order.
        groups: The group sizes.

    Returns:
        dict: ``auc``, ``pairs``, ``positives``, and the mean predicted
        score of the positives and of the negatives.
    """
    for name in (predicate, within):
        if name is not None and name not in predicates:
            raise KeyError(f'predicate {name!r} is not among '
                           f'{list(predicates)}')
    scores, labels = [], []
    for s in samples:
        if len(s['pred_pairs']) != len(s['obj_labels']):
            raise ValueError(
                f'video {s.get("video_id")!r}: {len(s["pred_pairs"])} '
                f'predicted pairs for {len(s["obj_labels"])} objects; the '
                'pairs must be the ground-truth objects (PredCLS or SGCLS)')
        keep = np.ones(len(s['obj_labels']), bool) if within is None else \
            _column(s, within, predicates, groups) > 0
        scores.append(_column(s, predicate, predicates, groups,
                              'pred_')[keep])
        labels.append(_column(s, predicate, predicates, groups)[keep] > 0)
    scores = np.concatenate(scores) if scores else np.zeros(0)
    labels = np.concatenate(labels) if labels else np.zeros(0, bool)
    return dict(
        auc=roc_auc(scores, labels), pairs=int(len(labels)),
        positives=int(labels.sum()),
        mean_score_positive=float(scores[labels].mean())
        if labels.any() else float('nan'),
        mean_score_negative=float(scores[~labels].mean())
        if (~labels).any() else float('nan'))
