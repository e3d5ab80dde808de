"""VideoQA top-1 accuracy beside the answers a blind guesser would give."""
import os.path as osp
import unicodedata
from collections import Counter, defaultdict
from typing import Collection, Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from hvlm.datasets.annotations import (METADATA_FILE, TASK_FILES,
                                       parse_metadata, parse_task_file)
from hvlm.registry import METRICS


def training_answer_counts(split_root: str,
                           domains: Optional[Collection[str]] = None
                           ) -> Dict[str, Counter]:
    """``question -> Counter(answer string)`` over a split directory's
    ``annotations/video_qa.json``, keeping the videos of ``domains`` (by
    ``metadata.json``; all videos when None or without metadata)."""
    ann_dir = osp.join(split_root, 'annotations')
    meta_path = osp.join(ann_dir, METADATA_FILE)
    meta = parse_metadata(meta_path) if osp.isfile(meta_path) else {}
    qa_path = osp.join(ann_dir, TASK_FILES['video_qa'][0])
    if not osp.isfile(qa_path):
        raise FileNotFoundError(
            f'VideoQAMetric: prior_root={split_root!r} has no {qa_path}; '
            'point it at the training split directory')
    known = set(meta) if meta else None
    counts: Dict[str, Counter] = defaultdict(Counter)
    for vid, pairs in parse_task_file(qa_path, 'video_qa', known).items():
        if domains is not None and meta and \
                meta[vid]['domain'] not in domains:
            continue
        for qa in pairs:
            counts[qa['question']][qa['answer']] += 1
    return counts


def normalise_answer(text: str) -> str:
    """Lower case, punctuation and the articles a/an/the removed, single
    spaces: the normalisation of open-ended answers before exact match
    (SQuAD's ``normalize_answer``, Rajpurkar et al. 2016), so that "The
    ball." matches "ball"."""
    text = ''.join(' ' if unicodedata.category(c).startswith('P') else c
                   for c in str(text).lower())
    return ' '.join(w for w in text.split() if w not in ('a', 'an', 'the'))


def _known(key) -> bool:
    """Whether a ground-truth answer key can be matched: an id >= 0, or a
    non-empty normalised text."""
    return key >= 0 if isinstance(key, int) else bool(key)


def _top(counter: Counter) -> str:
    """The most frequent key; ties go to the smallest, so that the baseline
    does not depend on the order of the annotation file."""
    best = max(counter.values())
    return min(k for k, c in counter.items() if c == best)


@METRICS.register_module()
class VideoQAMetric(BaseMetric):
    """Top-1 accuracy of open-ended VideoQA as answer classification (the
    "accuracy" of TGIF-QA / MSRVTT-QA: the predicted answer equals the
    ground-truth answer string, here its id in the ``answers``
    vocabulary). A ground-truth answer outside the vocabulary (id ``-1``)
    counts as a question answered wrongly.

    Trivial baselines on the same questions, so that a model that ignores
    the video is easy to spot:

    - ``majority_top1``: always give the most frequent answer;
    - ``question_prior_top1``: for each distinct question, give its most
      frequent answer among the evaluated questions: the best that any
      answerer blind to the video can score on them (an upper bound of a
      question-only model trained on any data);
    - ``train_prior_top1`` (with ``prior_root``): for each question, its
      most frequent answer in the training split (videos of the evaluated
      domains), the majority training answer for a question never seen
      there: the question-only model a blind learner would fit.

    Also ``num_questions``. Without any question every value is nan.

    ``breakdown`` adds the accuracy of each group of questions,
    ``top1_<group>`` (the group's words joined by ``_``), and its size,
    ``num_<group>``: ``'question'`` groups identical questions (template
    questions, as the demo's six), ``'first_word'`` groups by the
    question's first word (what, who, how, when, where: the question types
    of MSVD-QA and MSRVTT-QA, Xu et al. 2017).

    Open-ended answers written as text (``LLMHead``: ``pred_qa`` entries
    with an ``answer`` string) are scored by normalised exact match
    (:func:`normalise_answer` of the prediction equals that of the
    ground-truth answer); the baselines then count normalised answer texts
    too, so the numbers stay comparable with the classifier's.

    Args:
        prior_root (str, optional): The training split directory (the
            documented layout) whose answers define ``train_prior_top1``.
        match (str): ``'id'`` (answer ids), ``'text'`` (normalised exact
            match of answer strings) or ``'auto'``: text when the
            predictions carry an ``answer`` string, ids otherwise.
        collect_device (str): Where results are gathered across ranks.
        breakdown (str, optional): ``'question'`` or ``'first_word'``,
            see above; None (default) reports no group.
        prefix (str, optional): Metric-name prefix; default ``'qa'``.
    """
    default_prefix: Optional[str] = 'qa'
    BREAKDOWNS = ('question', 'first_word')

    def __init__(self,
                 prior_root: Optional[str] = None,
                 match: str = 'auto',
                 breakdown: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if match not in ('auto', 'id', 'text'):
            raise ValueError(f"match={match!r} must be 'auto', 'id' or "
                             "'text'")
        if breakdown is not None and breakdown not in self.BREAKDOWNS:
            raise ValueError(f'breakdown={breakdown!r} must be None or one '
                             f'of {self.BREAKDOWNS}')
        self.breakdown = breakdown
        self.prior_root = prior_root
        self.match = match

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
                text = self.match == 'text' or (
                    self.match == 'auto' and isinstance(p.get('answer'), str))
                if text:
                    if not isinstance(p.get('answer'), str):
                        raise ValueError(
                            f'video {video_id!r}: match={self.match!r} '
                            'needs pred_qa entries with an answer string')
                    keys = (normalise_answer(g.get('answer') or ''),
                            normalise_answer(p['answer']))
                else:
                    keys = (int(g.get('answer_id', -1)), int(p['answer_id']))
                items.append((g['question'], *keys, g.get('answer'),
                              sample.get('domain')))
            self.results.append(items)

    def compute_metrics(self, results: List[list]) -> Dict[str, float]:
        items = [item for video in results for item in video]
        if not items:
            print_log('VideoQAMetric: no question to score; reporting nan',
                      logger='current', level=30)
            nan = float('nan')
            out = dict(top1=nan, majority_top1=nan, question_prior_top1=nan,
                       num_questions=0.)
            if self.prior_root:
                out['train_prior_top1'] = nan
            return out
        n = len(items)
        correct = sum(
            _known(gt) and gt == pred for _, gt, pred, _, _ in items)
        known = Counter(gt for _, gt, _, _, _ in items if _known(gt))
        majority = known.most_common(1)[0][1] if known else 0
        by_question = defaultdict(Counter)
        for question, gt, _, _, _ in items:
            if _known(gt):
                by_question[question][gt] += 1
        prior = sum(c.most_common(1)[0][1] for c in by_question.values())
        out = dict(
            top1=correct / n,
            majority_top1=majority / n,
            question_prior_top1=prior / n)
        if self.prior_root:
            out['train_prior_top1'] = self._train_prior(items)
        out['num_questions'] = float(n)
        if self.breakdown:
            out.update(self._groups(items))
        return out

    def _groups(self, items: List[tuple]) -> Dict[str, float]:
        """``top1_<group>`` and ``num_<group>`` of each question group,
        in order of the groups' names."""
        groups = defaultdict(list)
        for question, gt, pred, _, _ in items:
            words = normalise_answer(question).split() or ['empty']
            if self.breakdown == 'first_word':
                words = words[:1]
            groups['_'.join(words)].append(_known(gt) and gt == pred)
        out = {}
        for name in sorted(groups):
            out[f'top1_{name}'] = sum(groups[name]) / len(groups[name])
            out[f'num_{name}'] = float(len(groups[name]))
        return out

    def _train_prior(self, items: List[tuple]) -> float:
        domains = {domain for *_, domain in items}
        counts = training_answer_counts(
            self.prior_root, None if None in domains else domains)
        overall = sum(counts.values(), Counter())
        if not overall:
            raise ValueError(f'VideoQAMetric: no training answers in '
                             f'{self.prior_root} for domains {domains}')
        hits = sum(
            _known(gt) and answer == _top(counts.get(question) or overall)
            for question, gt, _, answer, _ in items)
        return hits / len(items)
