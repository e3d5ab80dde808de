"""One video clip's ground truth and predictions, for every task at once."""
from typing import List, Optional

import torch
from mmengine.structures import BaseDataElement


class VideoDataSample(BaseDataElement):
    """The data sample that travels from the pipeline to heads and metrics.

    Metainfo (set by ``PackVideoInputs``): ``video_id``, ``filename``,
    ``domain`` (name) and ``domain_id``, ``avg_fps``, ``total_frames``,
    ``frame_inds`` (the decoded frame indices, ``num_clips * clip_len``),
    ``frame_times`` (their times in seconds) and ``img_shape``.

    Ground truth, present only for the tasks the video is annotated for:

    - ``gt_frame_labels``: ``LongTensor [num_clips * clip_len]``, the action
      label at every decoded frame, ``-1`` where no action covers it or the
      video has no action annotation (ignored by losses and metrics).
    - ``gt_segments`` ``FloatTensor [K, 2]`` (start, end in seconds) and
      ``gt_segment_labels`` ``LongTensor [K]``.
    - ``gt_qa``: list of ``dict(question=str, answer=str, answer_id=int)``.
    - ``gt_captions``: list of ``dict(text=str, start=float, end=float)``.

    Predictions, written by heads: ``pred_frame_scores``
    (``FloatTensor [num_clips * clip_len, num_classes]``, probabilities) and
    ``pred_frame_labels`` (``LongTensor [num_clips * clip_len]``).

    - ``ActionDetectionHead`` also writes ``pred_actionness``
      (``FloatTensor [num_clips * clip_len]``), ``pred_segments``
      (``FloatTensor [S, 2]``, start and end in seconds),
      ``pred_segment_labels`` (``LongTensor [S]``) and
      ``pred_segment_scores`` (``FloatTensor [S]``), best first.
    - ``VideoQAHead``: ``pred_qa``, a list of ``dict(question=str,
      answer_id=int, score=float)``, one per question of ``questions`` (an
      optional list of str to ask new questions) or else of ``gt_qa``.
    - ``VideoCaptioningHead``: ``pred_captions``, a list of
      ``dict(text=str, start=float, end=float)``, one per segment.
    - ``LLMHead``: ``pred_qa`` with the generated ``answer=str`` (and
      ``answer_id=-1``), ``pred_captions`` as above.
    """

    @property
    def gt_frame_labels(self) -> torch.Tensor:
        return self._gt_frame_labels

    @gt_frame_labels.setter
    def gt_frame_labels(self, value: torch.Tensor) -> None:
        self.set_field(torch.as_tensor(value, dtype=torch.long),
                       '_gt_frame_labels', dtype=torch.Tensor)

    @gt_frame_labels.deleter
    def gt_frame_labels(self) -> None:
        del self._gt_frame_labels

    @property
    def pred_frame_scores(self) -> torch.Tensor:
        return self._pred_frame_scores

    @pred_frame_scores.setter
    def pred_frame_scores(self, value: torch.Tensor) -> None:
        self.set_field(value, '_pred_frame_scores', dtype=torch.Tensor)

    @pred_frame_scores.deleter
    def pred_frame_scores(self) -> None:
        del self._pred_frame_scores

    @property
    def pred_frame_labels(self) -> torch.Tensor:
        return self._pred_frame_labels

    @pred_frame_labels.setter
    def pred_frame_labels(self, value: torch.Tensor) -> None:
        self.set_field(value, '_pred_frame_labels', dtype=torch.Tensor)

    @pred_frame_labels.deleter
    def pred_frame_labels(self) -> None:
        del self._pred_frame_labels


SampleList = List[VideoDataSample]
OptSampleList = Optional[SampleList]
