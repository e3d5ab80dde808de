"""Dense video captioning: one caption per temporal segment."""
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from hvlm.registry import HEADS
from hvlm.structures import SampleList
from hvlm.structures import VideoFeatures
from ..text import CaptionDecoder, TokenizerStateMixin
from .base_head import BaseHead, global_mean
from .video_memory import step_times, video_memory

SEGMENT_SOURCES = ('auto', 'gt', 'pred', 'video')


@HEADS.register_module()
class VideoCaptioningHead(TokenizerStateMixin, BaseHead):
    """Caption each temporal segment of a video from its own video tokens
    (dense captioning, Krishna et al. 2017, "Dense-Captioning Events in
    Videos").

    For a segment ``[start, end]`` (seconds) the decoder's memory is the
    video's final tokens whose time span overlaps it; a token's span comes
    from the tubelets merged into it and the decoded frames' times
    (``frame_times``, see :func:`step_times`). A segment that overlaps no
    token (it lies outside the sampled frames) reads the nearest tokens.
    The other tokens are masked with ``-inf`` and the kept ones carry
    ``log(size)`` (proportional attention). The decoder
    (:class:`CaptionDecoder`) is trained with teacher forcing, the loss
    averaged over the caption words of the whole batch, all ranks together
    (:func:`global_mean`), and decodes greedily (``beam_size=1``) or by beam
    search.

    ``predict`` writes ``pred_captions``: ``dict(text, start, end)`` per
    segment. Which segments (``segments``): ``'gt'`` the ground-truth
    caption times (the usual dense-captioning evaluation with given
    proposals), ``'pred'`` the detection head's ``pred_segments`` (the
    ``max_pred_segments`` best scored; put the detection head first in a
    MultiTaskHead), ``'video'`` the whole sampled span, ``'auto'`` the first
    of these that the sample has.

    Args:
        in_channels (int): Width of the video tokens.
        vocab_size (int): Decoder vocabulary capacity (the original: 10000).
        embed_dims (int): Decoder width; video tokens are projected to it.
        num_layers (int): Decoder layers.
        num_heads (int): Attention heads.
        max_caption_len (int): Longest caption in tokens, BOS and EOS
            included; longer training captions are cut.
        dropout (float): Dropout in the decoder.
        beam_size (int): 1 for greedy decoding, more for beam search.
        segments (str): Where ``predict`` takes segments from, see above.
        max_pred_segments (int): Predicted segments captioned per video.
        train_unseen (bool): Also train on captions of segments that lie
            outside the sampled frames (their video tokens cannot show
            them; off by default).
        loss_weight (float): Multiplier of the loss.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: int,
                 vocab_size: int = 10000,
                 embed_dims: int = 128,
                 num_layers: int = 2,
                 num_heads: int = 4,
                 max_caption_len: int = 24,
                 dropout: float = 0.1,
                 beam_size: int = 1,
                 segments: str = 'auto',
                 max_pred_segments: int = 5,
                 train_unseen: bool = False,
                 loss_weight: float = 1.0,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        for name, value in (('in_channels', in_channels),
                            ('vocab_size', vocab_size),
                            ('embed_dims', embed_dims),
                            ('beam_size', beam_size),
                            ('max_caption_len', max_caption_len)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f'{name}={value!r} must be a positive '
                                 'integer')
        if segments not in SEGMENT_SOURCES:
            raise ValueError(f'segments={segments!r} must be one of '
                             f'{SEGMENT_SOURCES}')
        self.vocab_size = vocab_size
        self.max_caption_len = max_caption_len
        self.beam_size = beam_size
        self.segments = segments
        self.max_pred_segments = max_pred_segments
        self.train_unseen = train_unseen
        self.loss_weight = loss_weight
        self.video_proj = torch.nn.Linear(in_channels, embed_dims)
        self.decoder = CaptionDecoder(vocab_size, embed_dims, num_layers,
                                      num_heads, max_caption_len, dropout)

    def forward(self, feats: VideoFeatures) -> Tensor:
        """Video tokens projected to the decoder width, ``[V, M, D]``."""
        return self.video_proj(video_memory(feats)[0])

    def segment_memory(self, feats: VideoFeatures, data_samples: SampleList,
                       segments: List[Tuple[int, float, float]]
                       ) -> Tuple[Tensor, Tensor, Tensor]:
        """Memory of each ``(video, start, end)`` segment.

        Returns:
            ``memory [S, M, D]``, ``bias [S, M]`` (``log(size)`` on the
            segment's tokens, ``-inf`` elsewhere) and ``seen [S]`` (bool:
            the segment overlaps a sampled frame).
        """
        memory, bias, steps = video_memory(feats)  # [V,M,C] [V,M] [V,M,2]
        memory = self.video_proj(memory)  # [V, M, D]
        token_span = []
        for v, sample in enumerate(data_samples):
            if 'frame_times' not in sample.metainfo:
                raise ValueError(
                    f'video {sample.metainfo.get("video_id", "?")!r} has '
                    'no frame_times in its metainfo (SampleFrames adds '
                    'them); captions are placed in time with them')
            times = step_times(feats, sample.metainfo['frame_times']).to(
                memory.device)  # [nc*T0, 2]
            token_span.append(torch.stack(
                [times[steps[v, :, 0], 0], times[steps[v, :, 1], 1]],
                dim=-1))  # [M, 2]
        token_span = torch.stack(token_span)  # [V, M, 2]
        index = torch.tensor([s[0] for s in segments], device=memory.device)
        seg = torch.tensor([[s[1], s[2]] for s in segments],
                           device=memory.device)  # [S, 2]
        span = token_span[index]  # [S, M, 2]
        gap = torch.maximum(span[..., 0] - seg[:, 1:],
                            seg[:, :1] - span[..., 1]).clamp_min(0)  # [S, M]
        nearest = gap.min(dim=1, keepdim=True).values  # [S, 1]
        out_bias = bias[index].masked_fill(gap > nearest, float('-inf'))
        return memory[index], out_bias, nearest[:, 0] == 0

    def loss(self, feats: VideoFeatures,
             data_samples: SampleList) -> Dict[str, Tensor]:
        segments, texts = [], []
        for v, sample in enumerate(data_samples):
            for caption in sample.get('gt_captions', []):
                segments.append(
                    (v, float(caption['start']), float(caption['end'])))
                texts.append(caption['text'])
        zero = feats.tokens.sum() * 0. + sum(
            p.sum() for p in self.parameters()) * 0.
        if segments:
            memory, bias, seen = self.segment_memory(feats, data_samples,
                                                     segments)
            if not self.train_unseen:
                memory, bias = memory[seen], bias[seen]
                texts = [t for t, s in zip(texts, seen.tolist()) if s]
        if not segments or not texts:
            # still a collective call: the other ranks may have captions
            return dict(loss_caption=global_mean(zero, 0) * self.loss_weight)
        targets = self.require_tokenizer().batch_encode(
            texts, self.max_caption_len, bos=True, eos=True,
            device=memory.device)  # [S, L]
        total, count = self.decoder.loss(targets, memory, bias)
        return dict(loss_caption=(global_mean(total, count) + zero) *
                    self.loss_weight)

    def _segments_of(self, sample) -> List[Tuple[float, float]]:
        sources = (('gt', 'pred', 'video')
                   if self.segments == 'auto' else (self.segments, ))
        for source in sources:
            if source == 'gt' and 'gt_captions' in sample:
                return [(float(c['start']), float(c['end']))
                        for c in sample.gt_captions]
            if source == 'pred' and 'pred_segments' in sample:
                order = torch.as_tensor(
                    sample.pred_segment_scores).argsort(descending=True)
                chosen = torch.as_tensor(sample.pred_segments)[
                    order[:self.max_pred_segments]]
                return [(float(s), float(e)) for s, e in chosen.tolist()]
            if source == 'video':
                times = sample.metainfo.get('frame_times')
                if times is None:
                    return []
                times = torch.as_tensor(times, dtype=torch.float64)
                return [(float(times.min()), float(times.max()))]
        return []

    def predict(self, feats: VideoFeatures,
                data_samples: SampleList) -> SampleList:
        segments = [(v, s, e) for v, sample in enumerate(data_samples)
                    for s, e in self._segments_of(sample)]
        texts: List[str] = []
        if segments:
            tokenizer = self.require_tokenizer()
            memory, bias, _ = self.segment_memory(feats, data_samples,
                                                  segments)
            ids = self.decoder.generate(memory, bias, self.beam_size)
            texts = [tokenizer.decode(row) for row in ids]
        for v, sample in enumerate(data_samples):
            sample.pred_captions = [
                dict(text=text, start=s, end=e)
                for (video, s, e), text in zip(segments, texts) if video == v
            ]
        return data_samples
