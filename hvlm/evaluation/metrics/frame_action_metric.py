"""Frame-level action classification accuracy."""
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from hvlm.registry import METRICS


@METRICS.register_module()
class FrameActionMetric(BaseMetric):
    """Accuracy of the per-frame action labels.

    Only frames whose ground truth is not ``-1`` count; videos without
    ``gt_frame_labels`` (not annotated for actions) are skipped.

    - ``frame_top1``: correct frames / labelled frames.
    - ``frame_mean_class_acc``: for each class that occurs in the ground
      truth, the accuracy over its frames; then the mean over those classes.
      A class never seen in the ground truth is left out (its accuracy is
      undefined), so predicting it only lowers the other classes' scores.
    - ``chance_top1``: frames of the most frequent ground-truth class /
      labelled frames, i.e. the ``frame_top1`` of always predicting that
      class. Reported beside ``frame_top1`` because long videos are
      dominated by a few classes and a high top-1 can be trivial.

    With no labelled frame at all every value is ``nan`` (and a warning is
    logged): an accuracy of nothing is undefined, and 0 would read as a
    broken model.

    Scores (``pred_frame_scores``) are not collected: they are ``F x K``
    floats per video and none of these figures needs them.

    Args:
        collect_device (str): Where results are gathered across ranks.
        prefix (str, optional): Metric-name prefix; default ``'action'``.
    """
    default_prefix: Optional[str] = 'action'

    def process(self, data_batch, data_samples: Sequence) -> None:
        """Keep each annotated video's labels, on the CPU.

        ``data_samples`` are ``VideoDataSample`` or, as mmengine's Evaluator
        passes them, their ``to_dict()`` form (metainfo flattened in); both
        answer ``.get``.
        """
        for sample in data_samples:
            gt = sample.get('gt_frame_labels')
            if gt is None:
                # One result per video even when it has nothing to score:
                # mmengine's collect_results interleaves the ranks' lists
                # and cuts them to the dataset size, so skipping a video
                # would drop or misalign other videos' results.
                empty = torch.zeros(0, dtype=torch.long)
                self.results.append(dict(gt=empty, pred=empty))
                continue
            pred = sample.get('pred_frame_labels')
            video_id = sample.get('video_id', '?')
            if pred is None:
                raise ValueError(
                    f'video {video_id!r} has gt_frame_labels but no '
                    'pred_frame_labels; is an ActionDetectionHead in the '
                    'model?')
            gt = torch.as_tensor(gt).reshape(-1).cpu()
            pred = torch.as_tensor(pred).reshape(-1).cpu()
            if gt.shape != pred.shape:
                raise ValueError(
                    f'video {video_id!r} has {gt.numel()} gt_frame_labels '
                    f'but {pred.numel()} pred_frame_labels')
            self.results.append(dict(gt=gt, pred=pred))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        if results:
            gt = torch.cat([r['gt'] for r in results])  # [F_total]
            pred = torch.cat([r['pred'] for r in results])  # [F_total]
            keep = gt != -1
            gt, pred = gt[keep], pred[keep]  # [F_labelled]
        if not results or gt.numel() == 0:
            print_log(
                'FrameActionMetric: no frame with a ground-truth label '
                '(all -1 or no annotated video); reporting nan',
                logger='current', level=30)
            nan = float('nan')
            return dict(
                frame_top1=nan, frame_mean_class_acc=nan, chance_top1=nan)
        correct = (pred == gt).float()  # [F_labelled]
        classes, counts = gt.unique(return_counts=True)  # [K_present]
        per_class_correct = torch.zeros(
            int(classes.max()) + 1).index_add_(0, gt, correct)[classes]
        return dict(
            frame_top1=correct.mean().item(),
            frame_mean_class_acc=(per_class_correct /
                                  counts).mean().item(),
            chance_top1=(counts.max() / gt.numel()).item())
