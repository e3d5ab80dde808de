"""Dense-captioning metrics: BLEU-4, CIDEr-D and ROUGE-L."""
from collections import Counter
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from hvlm.datasets.annotations import caption_words
from hvlm.models.heads.temporal_decoding import temporal_iou
from hvlm.registry import METRICS
from .observed_span import observed_span, overlaps


def normalise(text: str) -> str:
    """The caption's words joined by single spaces, the form the COCO
    scorers expect: the words of pycocoevalcap's Java PTB tokenizer, given
    by :func:`~hvlm.utils.ptb_tokenize.caption_words` without Java (the
    same function builds the ``words`` vocabulary and the heads' word
    tokenizer, so a model is scored on the words it writes)."""
    return ' '.join(caption_words(text))


def caption_scores(refs: Dict[str, List[str]],
                   hyps: Dict[str, str]) -> Dict[str, float]:
    """Corpus BLEU-4 (Papineni et al. 2002), CIDEr-D (Vedantam et al.
    2015) and ROUGE-L (Lin 2004) as computed by the COCO caption
    evaluation code (``pycocoevalcap``, pure Python for these three).

    An empty candidate is scored as the empty caption it is: no n-gram
    matches, and it adds nothing to the candidate length BLEU's brevity
    penalty compares with the references.

    Args:
        refs: ``id -> reference captions`` (normalised, each with a word:
            CIDEr-D cannot score a corpus whose references have none).
        hyps: ``id -> the candidate caption`` (normalised, may be empty).
    """
    gts = {k: list(v) for k, v in refs.items()}
    res = {k: [hyps[k]] for k in refs}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    rouge, _ = Rouge().compute_score(gts, res)
    return dict(BLEU_4=float(bleu[3]), CIDEr=float(cider),
                ROUGE_L=float(rouge))


@METRICS.register_module()
class CaptionMetric(BaseMetric):
    """BLEU-4, CIDEr(-D) and ROUGE-L of dense captions, segment by
    segment, beside a constant-caption baseline.

    Every ground-truth caption (a segment with a text) is paired with the
    predicted caption whose segment overlaps it most (tIoU; with the
    captioning head's ``segments='gt'`` that is the same segment), or with
    an empty caption when none overlaps; the pairs are scored as one
    corpus by :func:`caption_scores`. This is dense captioning with
    ground-truth proposals (Krishna et al. 2017) when predictions use the
    ground-truth times. Captions are tokenised by :func:`normalise`, as
    pycocoevalcap's PTB tokenizer does, in any language; a ground-truth
    caption with no word (punctuation only, named when the annotations are
    read) cannot be matched by anything and is left out.

    ``const_<metric>``: the same scores when every segment is given the
    single most frequent ground-truth caption of the evaluated set (a
    trivial, optimistic baseline: it is picked on the evaluated set).

    With ``observed_only=True`` (default) only segments that overlap the
    sampled frames count (:func:`observed_span`): the model cannot caption
    what it never saw. ``num_segments`` is the number scored.

    Args:
        observed_only (bool): See above.
        collect_device (str): Where results are gathered across ranks.
        prefix (str, optional): Metric-name prefix; default ``'caption'``.
    """
    default_prefix: Optional[str] = 'caption'

    def __init__(self,
                 observed_only: bool = True,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.observed_only = observed_only

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            gt = sample.get('gt_captions') or []
            pred = sample.get('pred_captions')
            video_id = sample.get('video_id', '?')
            if gt and pred is None:
                raise ValueError(
                    f'video {video_id!r} has gt_captions but no '
                    'pred_captions; is a VideoCaptioningHead in the model?')
            span = observed_span(sample.get('frame_times')) \
                if self.observed_only else None
            gt = [c for c in gt
                  if overlaps(float(c['start']), float(c['end']), span)]
            pairs = []
            if gt:
                gt_seg = torch.tensor([[float(c['start']), float(c['end'])]
                                       for c in gt])  # [G, 2]
                pred_seg = torch.tensor(
                    [[float(c['start']), float(c['end'])]
                     for c in pred]).reshape(-1, 2)  # [P, 2]
                iou = temporal_iou(gt_seg, pred_seg)  # [G, P]
                for g, caption in enumerate(gt):
                    text = ''
                    if len(pred) and float(iou[g].max()) > 0:
                        text = pred[int(iou[g].argmax())]['text']
                    ref = normalise(caption['text'])
                    if ref:
                        pairs.append((ref, normalise(text)))
            self.results.append(pairs)

    def compute_metrics(self, results: List[list]) -> Dict[str, float]:
        pairs = [p for video in results for p in video]
        if not pairs:
            print_log('CaptionMetric: no caption to score; reporting nan',
                      logger='current', level=30)
            nan = float('nan')
            return dict(BLEU_4=nan, CIDEr=nan, ROUGE_L=nan, const_BLEU_4=nan,
                        const_CIDEr=nan, const_ROUGE_L=nan,
                        num_segments=0.)
        refs = {str(i): [ref] for i, (ref, _) in enumerate(pairs)}
        metrics = caption_scores(
            refs, {str(i): hyp for i, (_, hyp) in enumerate(pairs)})
        constant = Counter(ref for ref, _ in pairs).most_common(1)[0][0]
        baseline = caption_scores(refs, {k: constant for k in refs})
        metrics.update({f'const_{k}': v for k, v in baseline.items()})
        metrics['num_segments'] = float(len(pairs))
        return metrics
