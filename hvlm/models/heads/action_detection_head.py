"""Per-frame action classification, actionness and temporal segments."""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hvlm.registry import HEADS
from hvlm.structures import SampleList
from hvlm.structures import VideoFeatures
from .base_head import BaseHead, global_mean
from .temporal_decoding import decode_segments, temporal_smooth


def gt_frame_labels(data_samples: SampleList, num_frames: int, device,
                    num_classes: Optional[int] = None,
                    name: str = 'num_classes') -> Tensor:
    """The samples' ``gt_frame_labels`` stacked, ``LongTensor [B,
    num_frames]``; a sample without them counts as all ``-1``. Fails naming
    the video whose labels are not ``num_frames`` long, and, with
    ``num_classes``, a class at or above it (``name``: the config key that
    sets it)."""
    labels = []
    for sample in data_samples:
        if 'gt_frame_labels' not in sample:
            labels.append(torch.full((num_frames, ), -1, dtype=torch.long))
            continue
        gt = sample.gt_frame_labels
        if gt.numel() != num_frames:
            raise ValueError(
                f'video {sample.metainfo.get("video_id", "?")!r} has '
                f'{gt.numel()} gt_frame_labels but the model produced '
                f'{num_frames} frames (num_clips * clip_len)')
        labels.append(gt.reshape(-1))
    labels = torch.stack(labels).to(device)  # [B, num_frames]
    if num_classes is not None and bool((labels >= num_classes).any()):
        raise ValueError(
            f'gt_frame_labels contain class {int(labels.max())} but '
            f'{name}={num_classes}; raise {name} to at least the size of '
            "the dataset's class vocabulary")
    return labels


@HEADS.register_module()
class ActionDetectionHead(BaseHead):
    """Score every decoded frame against a fixed set of action classes,
    estimate whether it shows an action at all, and cut the video into
    scored action segments.

    The backbone sees one feature per tubelet time step; each is repeated
    over the ``temporal_patch`` frames it covers, cropped to the clip's real
    length (the backbone pads clips), and the clips of a video are laid end
    to end, giving one row per decoded frame in the order of
    ``gt_frame_labels``.

    The head is split into :meth:`frame_logits` (features to per-frame
    logits) and :meth:`loss_by_frame_logits` (logits to losses) so that
    extensions plug in at one place.

    Actionness (Zhao et al. 2017, "Temporal Action Detection with
    Structured Segment Networks"): a second linear layer gives each frame
    the probability that any action is under way, trained with binary
    cross-entropy on the videos annotated for actions (those with
    ``gt_segments``): a frame inside a ground-truth segment is 1, one
    outside is 0; videos without action annotation are ignored.

    ``predict`` smooths class probabilities and actionness over
    ``smooth_window`` frames (a centred moving average; 3 as in the
    original HierarchicalVLM), writes them per frame, and decodes segments
    with :func:`decode_segments` (multi-threshold grouping and class-wise
    temporal NMS) using the frames' ``frame_times`` (seconds; frame
    indices when a sample has none).

    Args:
        in_channels (int): Channels of the backbone's final tokens.
        num_classes (int): Capacity of the classifier; the dataset's class
            vocabulary must fit in it.
        dropout (float): Dropout before the classifier.
        loss_weight (float): Multiplier of the classification loss.
        label_smoothing (float): Cross-entropy label smoothing in ``[0, 1)``.
        spatial_pool (str): How a time step's tokens become one feature,
            ``'max'`` or ``'mean'``. Max is the default: actions are often
            done by a small part of the frame, which a mean over the whole
            frame dilutes (on the demo data the mean-pooled head stayed
            near the majority-class accuracy where max pooling learned).
        actionness_loss_weight (float): Multiplier of the actionness loss.
        smooth_window (int): Frames of the moving average in ``predict``
            (odd; 1 turns smoothing off).
        actionness_thresholds (sequence of float): Grouping thresholds of
            the segment decoding.
        nms_iou (float): tIoU above which NMS drops a same-class segment.
        max_segments (int): Most segments kept per video.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int = 150,
                 dropout: float = 0.1,
                 loss_weight: float = 1.0,
                 label_smoothing: float = 0.,
                 spatial_pool: str = 'max',
                 actionness_loss_weight: float = 1.0,
                 smooth_window: int = 3,
                 actionness_thresholds: Sequence[float] = (0.3, 0.5, 0.7),
                 nms_iou: float = 0.5,
                 max_segments: int = 100,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not isinstance(num_classes, int) or num_classes <= 0:
            raise ValueError(
                f'num_classes={num_classes} must be a positive integer')
        if not isinstance(in_channels, int) or in_channels <= 0:
            raise ValueError(
                f'in_channels={in_channels} must be a positive integer')
        if not 0. <= label_smoothing < 1.:
            raise ValueError(
                f'label_smoothing={label_smoothing} must be in [0, 1)')
        if spatial_pool not in ('max', 'mean'):
            raise ValueError(
                f"spatial_pool={spatial_pool!r} must be 'max' or 'mean'")
        if not isinstance(smooth_window, int) or smooth_window < 1 \
                or smooth_window % 2 == 0:
            raise ValueError(f'smooth_window={smooth_window!r} must be a '
                             'positive odd integer')
        if not all(0. <= t <= 1. for t in actionness_thresholds) or \
                not actionness_thresholds:
            raise ValueError(
                f'actionness_thresholds={actionness_thresholds} must be a '
                'non-empty sequence of values in [0, 1]')
        self.spatial_pool = spatial_pool
        self.actionness_loss_weight = actionness_loss_weight
        self.smooth_window = smooth_window
        self.actionness_thresholds = tuple(actionness_thresholds)
        self.nms_iou = nms_iou
        self.max_segments = max_segments
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.loss_weight = loss_weight
        self.label_smoothing = label_smoothing
        self.dropout = nn.Dropout(dropout)
        self.fc_cls = nn.Linear(in_channels, num_classes)
        self.fc_act = nn.Linear(in_channels, 1)

    @staticmethod
    def _to_frames(x: Tensor, feats: VideoFeatures) -> Tensor:
        """Per-step values ``[B*num_clips, T0, D]`` to per-frame values
        ``[B, num_clips * num_frames, D]``."""
        D = x.shape[-1]
        x = x.repeat_interleave(
            feats.temporal_patch, dim=1)  # [B*num_clips, T0*t, D]
        x = x[:, :feats.num_frames]  # [B*num_clips, T, D]
        num_videos = x.shape[0] // feats.num_clips
        return x.reshape(num_videos, feats.num_clips * feats.num_frames,
                         D)  # [B, num_clips*T, D]

    def frame_logits(self, feats: VideoFeatures) -> Tensor:
        """``[B_videos, num_clips * num_frames, K]`` action logits."""
        x = feats.frame_features(self.spatial_pool)  # [B*num_clips, T0, C]
        return self._to_frames(self.fc_cls(self.dropout(x)), feats)

    def actionness_logits(self, feats: VideoFeatures) -> Tensor:
        """``[B_videos, num_clips * num_frames]`` actionness logits."""
        x = feats.frame_features(self.spatial_pool)  # [B*num_clips, T0, C]
        return self._to_frames(self.fc_act(self.dropout(x)),
                               feats)[..., 0]  # [B, num_clips*T]

    def forward(self, feats: VideoFeatures) -> Tensor:
        return self.frame_logits(feats)

    def loss_by_frame_logits(self, logits: Tensor,
                             labels: Tensor) -> Dict[str, Tensor]:
        """Cross-entropy over the frames whose label is not ``-1``.

        The sum over valid frames is divided by their count over all ranks
        (:func:`global_mean`; at least 1), so every labelled frame weighs
        the same however the batch is split across processes, and a batch
        without any labelled frame gives exactly 0 and still has a graph to
        backpropagate through (DDP needs every rank to call backward).
        """
        total = F.cross_entropy(
            logits.reshape(-1, self.num_classes),  # [B*F, K]
            labels.reshape(-1),  # [B*F]
            ignore_index=-1,
            reduction='sum',
            label_smoothing=self.label_smoothing)
        loss = global_mean(total, (labels != -1).sum())
        return dict(loss_cls=loss * self.loss_weight)

    def loss_actionness(self, logits: Tensor, labels: Tensor,
                        annotated: Tensor) -> Tensor:
        """Binary cross-entropy of actionness ``logits [B, F]`` against
        ``labels >= 0`` over the frames of ``annotated [B]`` videos, mean
        over those frames on all ranks (:func:`global_mean`); exactly 0
        (and connected) when there are none.
        """
        target = (labels >= 0).to(logits.dtype)  # [B, F]
        weight = annotated[:, None].expand_as(logits).to(logits.dtype)
        total = F.binary_cross_entropy_with_logits(
            logits, target, weight=weight, reduction='sum')
        return global_mean(total, weight.sum()) * self.actionness_loss_weight

    def loss(self, feats: VideoFeatures,
             data_samples: SampleList) -> Dict[str, Tensor]:
        logits = self.frame_logits(feats)  # [B, F, K]
        labels = gt_frame_labels(data_samples, logits.shape[1],
                                 logits.device, self.num_classes)  # [B, F]
        losses = self.loss_by_frame_logits(logits, labels)
        annotated = torch.tensor(['gt_segments' in s for s in data_samples],
                                 device=logits.device)  # [B]
        losses['loss_actionness'] = self.loss_actionness(
            self.actionness_logits(feats), labels, annotated)
        return losses

    def predict(self, feats: VideoFeatures,
                data_samples: SampleList) -> SampleList:
        """Write into every sample, per frame, ``pred_frame_scores [F, K]``
        (softmax, smoothed), ``pred_frame_labels [F]`` and
        ``pred_actionness [F]`` (sigmoid, smoothed); per segment,
        ``pred_segments [S, 2]`` (start, end in seconds),
        ``pred_segment_labels [S]`` and ``pred_segment_scores [S]``, best
        first."""
        scores = self.frame_logits(feats).softmax(-1)  # [B, F, K]
        if len(data_samples) != scores.shape[0]:
            raise ValueError(f'got {len(data_samples)} data samples for '
                             f'{scores.shape[0]} videos')
        act = self.actionness_logits(feats).sigmoid()  # [B, F]
        # Smooth within each clip: clips are separate stretches of time.
        per_clip = torch.cat([scores, act[..., None]], dim=-1).reshape(
            -1, feats.num_frames, self.num_classes + 1)  # [B*nc, T, K+1]
        per_clip = temporal_smooth(per_clip, self.smooth_window).reshape(
            scores.shape[0], -1, self.num_classes + 1).detach()  # [B,F,K+1]
        scores, act = per_clip[..., :-1], per_clip[..., -1]
        for sample, video_scores, video_act in zip(data_samples, scores,
                                                   act):
            sample.pred_frame_scores = video_scores
            sample.pred_frame_labels = video_scores.argmax(-1)
            sample.pred_actionness = video_act
            times = sample.metainfo.get('frame_times')
            times = torch.arange(video_act.numel(), dtype=torch.float32) \
                if times is None else torch.as_tensor(times).reshape(-1)
            segments, labels, seg_scores = decode_segments(
                video_scores.float().cpu(), video_act.float().cpu(), times,
                self.actionness_thresholds, self.nms_iou, self.max_segments)
            sample.pred_segments = segments
            sample.pred_segment_labels = labels
            sample.pred_segment_scores = seg_scores
        return data_samples
