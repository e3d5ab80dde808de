"""VideoQA top-1 accuracy beside the answers a blind guesser would give."""
from collections import Counter, defaultdict
from typing import Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from hvlm.registry import METRICS


@METRICS.register_module()
class VideoQAMetric(BaseMetric):
    """Top-1 accuracy of open-ended VideoQA as answer classification (the
    "accuracy" of TGIF-QA / MSRVTT-QA: the predicted answer equals the
    ground-truth answer string, here its id in the ``answers``
    vocabulary). A ground-truth answer outside the vocabulary (id ``-1``)
    counts as a question answered wrongly.

    Two trivial baselines on the same questions, so that a model that
    ignores the video is easy to spot:

    - ``majority_top1``: always give the most frequent answer;
    - ``question_prior_top1``: for each distinct question, give its most
      frequent answer (a question-only "blind" model with perfect
      knowledge of the answer distribution; both baselines are fitted on
      the evaluated questions themselves, so they are optimistic).

    Also ``num_questions``. Without any question every value is nan.

    Args:
        collect_device (str): Where results are gathered across ranks.
        prefix (str, optional): Metric-name prefix; default ``'qa'``.
    """
    default_prefix: Optional[str] = 'qa'

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            gt = sample.get('gt_qa') or []
            pred = sample.get('pred_qa')
            video_id = sample.get('video_id', '?')
            if gt and pred is None:
                raise ValueError(f'video {video_id!r} has gt_qa but no '
                                 'pred_qa; is a VideoQAHead in the model?')
            if gt and len(pred) != len(gt):
                raise ValueError(
                    f'video {video_id!r} has {len(gt)} gt_qa but '
                    f'{len(pred)} pred_qa; predictions must answer the '
                    'ground-truth questions in order')
            items = []
            for g, p in zip(gt, pred or []):
                if p['question'] != g['question']:
                    raise ValueError(
                        f'video {video_id!r}: pred_qa question '
                        f'{p["question"]!r} does not match gt_qa question '
                        f'{g["question"]!r}')
                items.append((g['question'], int(g.get('answer_id', -1)),
                              int(p['answer_id'])))
            self.results.append(items)

    def compute_metrics(self, results: List[list]) -> Dict[str, float]:
        items = [item for video in results for item in video]
        if not items:
            print_log('VideoQAMetric: no question to score; reporting nan',
                      logger='current', level=30)
            nan = float('nan')
            return dict(top1=nan, majority_top1=nan, question_prior_top1=nan,
                        num_questions=0.)
        n = len(items)
        correct = sum(gt >= 0 and gt == pred for _, gt, pred in items)
        known = Counter(gt for _, gt, _ in items if gt >= 0)
        majority = known.most_common(1)[0][1] if known else 0
        by_question = defaultdict(Counter)
        for question, gt, _ in items:
            if gt >= 0:
                by_question[question][gt] += 1
        prior = sum(c.most_common(1)[0][1] for c in by_question.values())
        return dict(
            top1=correct / n,
            majority_top1=majority / n,
            question_prior_top1=prior / n,
            num_questions=float(n))
