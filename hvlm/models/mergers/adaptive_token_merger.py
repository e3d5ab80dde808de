"""Content-aware bipartite token merging (ToMe plus motion and saliency)."""
import math
import time
from contextlib import contextmanager
from typing import Dict, Iterator, Optional, Tuple

import torch
import torch.nn as nn
from torch import Tensor
from torch.profiler import record_function

from hvlm.registry import MERGERS
from .attention_saliency import AttentionSaliency
from .color_saliency import ColorSaliency
from .dense_optical_flow import DenseOpticalFlow
from .edge_saliency import EdgeSaliency
from .grid_maps import downsample_frames, normalize_per_clip, pool_to_grid
from .merge_info import MergeInfo, compose, merge_tokens
from .motion_based_compression import MotionBasedCompression, check_ratios
from .motion_magnitude import MotionMagnitude
from .multi_saliency_fusion import MultiSaliencyFusion
from .temporal_merge_scheduler import TemporalMergeScheduler
from .token_similarity import TokenSimilarity

# Priority of protected tokens: below any real priority, but finite so that
# a stable sort keeps them in order.
_PROTECTED = -1e4


@MERGERS.register_module()
class AdaptiveTokenMerger(nn.Module):
    """Bipartite soft matching (ToMe, Bolya et al. ICLR 2023) steered by how
    much each token moves and stands out.

    ToMe splits the tokens into two sets A and B, links every A token to
    its most similar B token and merges the ``r`` best-linked A tokens into
    their partners. It is fast (one matrix product, no iteration over
    tokens) but content-blind: at a ratio of 0.5 every A token merges,
    moving or not. Here each token gets an importance in ``[0, 1]``:

    * motion: :class:`DenseOpticalFlow` on grey, downsampled frames ->
      :class:`MotionMagnitude` -> mean per tubelet ->
      :class:`MotionBasedCompression` keep budget;
    * saliency: :class:`EdgeSaliency`, :class:`ColorSaliency` (frames) and
      :class:`AttentionSaliency` (keys of the last block) fused by
      :class:`MultiSaliencyFusion`;

    and importance changes two things. (1) The destination set B is made of
    the most important tokens first (``strength * importance`` outranks the
    alternating pattern), so important tokens are never merged away and
    absorb nothing that is not similar to them. (2) Among A, a token's
    merge score is its best similarity minus ``strength * importance``.
    With motion and saliency off, B is exactly ToMe's odd tokens and the
    result is ToMe's merge. When the ratio asks for more than one round can
    remove (ToMe caps a round at ``|A|``), further rounds run on the merged
    tokens; their number is bounded by the token count.

    Merged values are size-weighted means (:func:`merge_tokens`), sizes
    add up and travel to the next stage's (proportional) attention, the
    first ``num_protected_tokens`` tokens (global or memory tokens) neither
    merge nor receive merges, and ``MergeInfo.index`` lets heads unmerge.
    Output tokens are ordered by the position of the token that absorbed
    the others (so time still runs forward), but they no longer form a grid
    (``shape=None``).

    Args:
        motion (dict): ``enabled`` (bool), ``window_size`` (flow search
            window in pixels of the input frames, odd; scaled to the
            downsampled frames the flow runs on), ``normalize`` (per-clip
            motion scaling),
            ``weight`` (share in the importance), ``sensitivity`` (of the
            keep budget).
        saliency (dict): ``enabled`` (bool); ``edge``, ``attention``,
            ``color``: bool or a weight for each source; ``weight`` (share in
            the importance); ``learnable`` (fusion weights as parameters).
        adaptive_merging (dict): ``target_compression_ratio`` (share of
            tokens kept, 0.5), ``min_compression_ratio`` (0.25),
            ``max_compression_ratio`` (1.0), ``mode`` and ``temporal_window``
            of :class:`TemporalMergeScheduler`.
        strength (float): Importance weight against similarity and the
            alternating split; 4 lets an importance gap of 0.25 override
            both.
        cue_scale (int): Pixels per token side at which cues are computed.
        use_keys (bool): Match on the attention keys when the encoder
            passes them (ToMe's choice), else on the tokens.
        num_protected_tokens (int): Leading tokens that never merge.
    """

    def __init__(self,
                 motion: dict = dict(enabled=True, window_size=15),
                 saliency: dict = dict(
                     enabled=True, edge=True, attention=True, color=True),
                 adaptive_merging: dict = dict(
                     target_compression_ratio=0.5,
                     min_compression_ratio=0.25,
                     max_compression_ratio=1.0),
                 strength: float = 4.0,
                 cue_scale: int = 2,
                 use_keys: bool = True,
                 num_protected_tokens: int = 0) -> None:
        super().__init__()
        motion = dict(motion)
        saliency = dict(saliency)
        merging = dict(adaptive_merging)
        if num_protected_tokens < 0:
            raise ValueError(f'num_protected_tokens={num_protected_tokens} '
                             'must be >= 0')
        self.scheduler = TemporalMergeScheduler(**merging)
        self.strength = strength
        self.cue_scale = cue_scale
        self.use_keys = use_keys
        self.num_protected = num_protected_tokens
        self.similarity = TokenSimilarity()

        self.motion_enabled = bool(motion.pop('enabled', True))
        self.motion_weight = float(motion.pop('weight', 1.0))
        if self.motion_enabled:
            self.flow = DenseOpticalFlow(
                window_size=motion.pop('window_size', 15),
                temperature=motion.pop('temperature', 0.02),
                smoothness=motion.pop('smoothness', 0.03))
            self.magnitude = MotionMagnitude(
                normalize=motion.pop('normalize', True),
                min_motion=motion.pop('min_motion', 0.25))
            self.compression = MotionBasedCompression(
                self.scheduler.target, self.scheduler.min_ratio,
                self.scheduler.max_ratio, motion.pop('sensitivity', 1.0))
        if motion:
            raise ValueError(f'unknown motion options {sorted(motion)}')

        self.saliency_enabled = bool(saliency.pop('enabled', True))
        self.saliency_weight = float(saliency.pop('weight', 1.0))
        learnable = saliency.pop('learnable', False)
        sources = {
            name: float(saliency.pop(name, True))
            for name in ('edge', 'attention', 'color')
        }
        if saliency:
            raise ValueError(f'unknown saliency options {sorted(saliency)}; '
                             'expected enabled, weight, learnable, edge, '
                             'attention, color')
        sources = {k: v for k, v in sources.items() if v > 0}
        if self.saliency_enabled and sources:
            self.edge = EdgeSaliency()
            self.color = ColorSaliency()
            self.attention_saliency = AttentionSaliency()
            self.fusion = MultiSaliencyFusion(sources, learnable=learnable)
        else:
            self.saliency_enabled = False
        self.profile = False
        self.timings: Dict[str, float] = {}

    # ------------------------------------------------------------------
    # runtime control (training strategies drive these through hooks)
    # ------------------------------------------------------------------
    def set_compression_ratio(self, ratio: float) -> None:
        """Change the share of tokens kept (curriculum learning).

        Raises:
            ValueError: if ``ratio`` is outside the configured
                ``[min_compression_ratio, max_compression_ratio]``.
        """
        check_ratios(ratio, self.scheduler.min_ratio, self.scheduler.max_ratio)
        self.scheduler.target = float(ratio)
        if hasattr(self, 'compression'):
            self.compression.target = float(ratio)

    @property
    def compression_ratio(self) -> float:
        """The share of tokens kept now."""
        return self.scheduler.target

    def set_cues(self,
                 motion: Optional[bool] = None,
                 saliency: Optional[bool] = None) -> None:
        """Switch the motion and saliency cues on or off (progressive
        merging); ``None`` leaves a cue as it is. A cue can only be switched
        on when it was configured (its modules were built).

        Raises:
            ValueError: if a cue that was not configured is switched on.
        """
        for name, value, built in (('motion', motion, hasattr(self, 'flow')),
                                   ('saliency', saliency,
                                    hasattr(self, 'fusion'))):
            if value is None:
                continue
            if value and not built:
                raise ValueError(
                    f'cannot switch {name} on: the merger was built with '
                    f'{name}.enabled=False (or no {name} source); enable it '
                    'in the config and let the hook switch it off instead')
            setattr(self, f'{name}_enabled', bool(value))

    # ------------------------------------------------------------------
    # cues
    # ------------------------------------------------------------------
    @contextmanager
    def _scope(self, name: str, device: torch.device) -> Iterator[None]:
        """A profiler scope; with ``profile=True`` also wall time added to
        ``timings[name]`` (synchronising CUDA so the time is real)."""
        with record_function(f'merger/{name}'):
            if not self.profile:
                yield
                return
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            yield
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            self.timings[name] = self.timings.get(name, 0.) + \
                time.perf_counter() - start

    @torch.no_grad()
    def importance(self, x: Tensor, shape: Optional[Tuple[int, int, int]],
                   frames: Optional[Tensor],
                   attn: Optional[Tensor]) -> Optional[Tensor]:
        """``[B, N]`` importance in ``[0, 1]`` or ``None`` when every cue is
        off. Cues steer discrete choices only, so no graph is kept.

        Frame cues (motion, edges, colour) need the token grid; after an
        unstructured merge (``shape=None``) only attention saliency is left.
        """
        parts, weights = [], []
        small = None
        if frames is not None and shape is not None:
            small = downsample_frames(frames, shape, self.cue_scale)
        if self.motion_enabled and small is not None \
                and small.shape[2] >= 2:
            with self._scope('motion', x.device):
                grey = small.mean(1, keepdim=True)  # [B, 1, T, h, w]
                # window_size is in input pixels: scale it to the small
                # frames (15 px at 64 -> 16 px: radius 2, window 5).
                shrink = small.shape[-1] / frames.shape[-1]
                radius = math.ceil(self.flow.window_size // 2 * shrink)
                # One frame pair per tubelet: its own motion, at a fraction
                # of the cost of every consecutive pair.
                stride = math.ceil(small.shape[2] / shape[0])
                magnitude, _ = self.magnitude(
                    self.flow(grey, window_size=2 * radius + 1,
                              stride=stride))  # [B, P, h, w]
                motion = normalize_per_clip(pool_to_grid(magnitude, shape))
                budget = self.compression(motion)  # [B, N]
                parts.append(budget / self.scheduler.max_ratio)
                weights.append(self.motion_weight)
        if self.saliency_enabled:
            with self._scope('saliency', x.device):
                maps = {}
                names = self.fusion.names
                if small is not None and 'edge' in names:
                    maps['edge'] = pool_to_grid(self.edge(small), shape)
                if small is not None and 'color' in names:
                    maps['color'] = pool_to_grid(self.color(small), shape)
                if 'attention' in names:
                    maps['attention'] = self.attention_saliency(
                        x if attn is None else attn)
                if maps:
                    parts.append(self.fusion(maps))
                    weights.append(self.saliency_weight)
        if not parts:
            return None
        total = sum(weights)
        return sum(w / total * p for w, p in zip(weights, parts))  # [B, N]

    # ------------------------------------------------------------------
    # matching
    # ------------------------------------------------------------------
    def _merge_round(self, x: Tensor, size: Tensor, metric: Tensor,
                     importance: Tensor, time_step: Tensor,
                     protected: Tensor, r: int) -> Tuple[Tensor, ...]:
        """Remove ``r`` tokens by one bipartite matching.

        Returns the merged ``x``, ``size``, ``metric``, ``importance``,
        ``time_step``, ``protected`` and the ``[B, n]`` index.
        """
        B, n, _ = x.shape
        device = x.device
        positions = torch.arange(n, device=device)
        parity = (positions % 2).to(importance.dtype)  # odd -> B, as ToMe
        priority = parity + self.strength * importance  # [B, n]
        priority = priority.masked_fill(protected, _PROTECTED)
        num_b = min(n // 2, n - int(protected[0].sum()))
        order = priority.argsort(dim=1, descending=True, stable=True)
        b_idx, a_idx = order[:, :num_b], order[:, num_b:]  # [B, nb], [B, na]

        def take(t: Tensor, idx: Tensor) -> Tensor:
            if t.dim() == 2:
                return t.gather(1, idx)
            return t.gather(1, idx[..., None].expand(-1, -1, t.shape[-1]))

        scores = self.similarity(take(metric, a_idx), take(metric, b_idx))
        mask = self.scheduler.temporal_mask(
            take(time_step, a_idx), take(time_step, b_idx))
        if mask is not None:
            scores = scores.masked_fill(~mask, -torch.inf)
        node_max, node_idx = scores.max(dim=-1)  # [B, na]
        rank = node_max - self.strength * take(importance, a_idx)
        rank = rank.masked_fill(take(protected, a_idx) | node_max.isneginf(),
                                -torch.inf)
        edge = rank.argsort(dim=-1, descending=True)  # [B, na]
        src = edge[:, :r]  # [B, r], A-local
        # Every token points at the token that represents it afterwards.
        rep = positions.expand(B, n).clone()  # [B, n]
        dst = b_idx.gather(1, node_idx.gather(1, src))  # [B, r]
        rep.scatter_(1, a_idx.gather(1, src), dst)
        survivor = rep == positions  # [B, n], n - r per row
        slot = survivor.long().cumsum(1) - 1  # [B, n]
        index = slot.gather(1, rep)  # [B, n]
        num_slots = n - r
        x, new_size = merge_tokens(x, size, index, num_slots)
        metric, _ = merge_tokens(metric, size, index, num_slots)
        importance = importance.new_zeros(B, num_slots).scatter_reduce(
            1, index, importance, 'amax', include_self=False)
        time_step = time_step[survivor].view(B, num_slots)
        protected = protected[survivor].view(B, num_slots)
        return x, new_size, metric, importance, time_step, protected, index

    def forward(self,
                x: Tensor,
                *,
                shape: Optional[Tuple[int, int, int]],
                size: Optional[Tensor] = None,
                frames: Optional[Tensor] = None,
                attn: Optional[Tensor] = None) -> MergeInfo:
        """Merge ``x`` down to the scheduled share of tokens.

        Args:
            x (Tensor): ``[B, N, C]`` tokens (grid order while
                ``shape`` is given, after the protected tokens).
            shape (tuple, optional): ``(T, H, W)`` grid of the non-protected
                tokens, or ``None``.
            size (Tensor, optional): ``[B, N]``; ``None`` means all ones.
            frames (Tensor, optional): ``[B, C_in, T_in, H_in, W_in]`` clips
                for the motion, edge and colour cues.
            attn (Tensor, optional): Keys ``[B, N, d]`` or weights
                ``[B, heads, N, N]`` of the last attention.

        Returns:
            MergeInfo: ``[B, K, C]`` tokens with ``K`` the scheduler's keep
            count, their sizes, the ``[B, N]`` index, ``shape=None``.
        """
        B, N, _ = x.shape
        P = self.num_protected
        if shape is not None and P + shape[0] * shape[1] * shape[2] != N:
            raise ValueError(f'shape={tuple(shape)} plus '
                             f'num_protected_tokens={P} does not match '
                             f'N={N} tokens')
        if size is None:
            size = x.new_ones(B, N, dtype=torch.float32)
        keep = self.scheduler.keep_count(N, P)
        index = torch.arange(N, device=x.device).expand(B, N)  # [B, N]
        if keep >= N:
            return MergeInfo(x=x, size=size, index=index, shape=shape)

        metric = x
        if self.use_keys and attn is not None and attn.dim() == 3:
            metric = attn
        cue_importance = self.importance(
            x[:, P:], shape, frames,
            None if attn is None or attn.dim() != 3 else attn[:, P:])
        importance = x.new_zeros(B, N, dtype=torch.float32)
        if cue_importance is not None:
            importance[:, P:] = cue_importance
        protected = torch.zeros(B, N, dtype=torch.bool, device=x.device)
        protected[:, :P] = True
        if shape is not None:
            frame_of = torch.arange(shape[0], device=x.device)
            time_step = torch.cat([
                torch.zeros(P, dtype=torch.long, device=x.device),
                frame_of.repeat_interleave(shape[1] * shape[2])
            ]).expand(B, N)  # [B, N]
        else:
            time_step = torch.zeros(B, N, dtype=torch.long, device=x.device)

        with self._scope('matching', x.device):
            metric = metric.detach()
            n = N
            # Each round removes at least one token, so N rounds always
            # suffice; usually one or two do.
            for _ in range(N):
                movable = (n - P) - min(n // 2, n - P)  # unprotected A
                r = min(n - keep, movable)
                if r <= 0:
                    break
                x, size, metric, importance, time_step, protected, step = \
                    self._merge_round(x, size, metric, importance, time_step,
                                      protected, r)
                index = compose(index, step)
                n -= r
            if n != keep:
                raise RuntimeError(
                    f'could not merge {N} tokens down to {keep} with '
                    f'{P} protected tokens (stopped at {n})')
        return MergeInfo(x=x, size=size, index=index, shape=None)

    def extra_repr(self) -> str:
        return (f'motion={self.motion_enabled}, '
                f'saliency={self.saliency_enabled}, '
                f'strength={self.strength}, scheduler={self.scheduler}')
