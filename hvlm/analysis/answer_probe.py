"""Whether a model's video tokens still hold what a question asks.

A linear probe (Alain and Bengio 2017, "Understanding intermediate layers
using linear classifier probes") of the answer to one question from the
encoder's final tokens, pooled per video (their mean, their maximum, or
both): trained on one split's videos, scored on another's. It tells a
head that cannot read an attribute from an encoder that no longer has it
(e.g. the object's colour, which the action labels do not need).
"""
from typing import Dict, Iterable, List, Sequence, Tuple

import torch
from torch import Tensor

from hvlm.evaluation.metrics.probe_accuracy import fit_linear_probe
from hvlm.models.heads.video_memory import video_memory

POOLS = ('mean', 'max', 'mean+max')


@torch.no_grad()
def pooled_tokens(model, dataset, question: str
                  ) -> Tuple[Dict[str, Tensor], List[str]]:
    """Each video's final tokens pooled (``POOLS``; and ``'mean_square'``,
    the mean of their squares, for :func:`token_spread`) and its answer to
    ``question``, over the videos of ``dataset`` that ask it."""
    model.eval()
    rows: Dict[str, list] = {pool: [] for pool in POOLS + ('mean_square', )}
    answers = []
    for i in range(len(dataset)):
        item = dataset[i]
        sample = item['data_samples']
        asked = [qa['answer'] for qa in sample.get('gt_qa', [])
                 if qa['question'] == question]
        if not asked:
            continue
        data = model.data_preprocessor(
            dict(inputs=[item['inputs']], data_samples=[sample]), False)
        feats = model.extract_feat(data['inputs'], data['data_samples'])
        tokens = video_memory(feats)[0][0].float()  # [M, C]
        mean, peak = tokens.mean(0), tokens.amax(0)
        rows['mean'].append(mean)
        rows['max'].append(peak)
        rows['mean+max'].append(torch.cat([mean, peak]))
        rows['mean_square'].append(tokens.pow(2).mean())
        answers.append(asked[0])
    if not answers:
        raise ValueError(f'no video of {dataset.data_root!r} asks '
                         f'{question!r}')
    return {pool: torch.stack(x) for pool, x in rows.items()}, answers


def token_spread(means: Tensor, mean_squares: Tensor) -> Dict[str, float]:
    """How much the tokens differ, from each video's mean token ``means
    [n, C]`` and the mean of its squared tokens ``mean_squares [n]``
    (videos with equally many tokens): the RMS of all tokens
    (``token_rms``), of the mean token of all videos (``mean_token_rms``),
    of the tokens less that mean (``deviation_rms``), and of the videos'
    mean tokens less it (``between_videos_rms``). An encoder whose tokens
    are mostly one shared token sends a projector an almost constant
    prefix (``LLMHead(video_norm=...)``)."""
    means = means.double()
    shared = means.mean(0)
    total = mean_squares.double().mean()
    return dict(
        token_rms=total.sqrt().item(),
        mean_token_rms=shared.pow(2).mean().sqrt().item(),
        deviation_rms=(total - shared.pow(2).mean()).clamp_min(0).sqrt()
        .item(),
        between_videos_rms=(means - shared).pow(2).mean().sqrt().item())


def linear_probe(train_x: Tensor, train_y: Sequence[str], test_x: Tensor,
                 test_y: Sequence[str], steps: int = 200,
                 weight_decay: float = 1e-3) -> dict:
    """:func:`fit_linear_probe` (the self-supervised probe's softmax
    regression) from ``train_x [n, D]`` to the answers ``train_y``, scored
    on ``test_x``. A test answer never seen in training counts as wrong.
    Returns ``train`` and ``test`` accuracy, ``num_answers`` and
    ``majority`` (the test accuracy of always giving the most frequent
    training answer)."""
    names = sorted(set(train_y))
    index = {name: i for i, name in enumerate(names)}
    y = torch.tensor([index[a] for a in train_y])
    predict = fit_linear_probe(train_x, y, len(names), steps, weight_decay)
    train = (predict(train_x) == y).double().mean().item()
    guess = [names[i] for i in predict(test_x).tolist()]
    majority = names[int(y.bincount().argmax())]
    return dict(
        train=train,
        test=sum(g == t for g, t in zip(guess, test_y)) / len(test_y),
        majority=sum(t == majority for t in test_y) / len(test_y),
        num_answers=len(names))


def answer_probe(model, train_set, test_set, question: str,
                 pools: Iterable[str] = POOLS, **probe_kwargs) -> dict:
    """:func:`linear_probe` of ``question``'s answer on each pooling of
    the tokens: ``pool -> dict(train, test, majority, num_answers)``, plus
    ``num_train`` and ``num_test`` videos and the training tokens'
    :func:`token_spread` (``tokens``)."""
    unknown = [p for p in pools if p not in POOLS]
    if unknown:
        raise ValueError(f'pools {unknown} are not among {POOLS}')
    train_x, train_y = pooled_tokens(model, train_set, question)
    test_x, test_y = pooled_tokens(model, test_set, question)
    out = {pool: linear_probe(train_x[pool], train_y, test_x[pool], test_y,
                              **probe_kwargs) for pool in pools}
    out.update(num_train=len(train_y), num_test=len(test_y),
               tokens=token_spread(train_x['mean'],
                                   train_x['mean_square']))
    return out
