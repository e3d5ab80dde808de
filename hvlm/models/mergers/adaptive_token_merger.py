"""Content-aware bipartite token merging (ToMe plus motion and saliency)."""
import math
import time
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
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
    add up and travel to the following blocks' (proportional) attention,
    the first ``num_protected_tokens`` tokens (global or memory tokens)
    neither merge nor receive merges, and ``MergeInfo.index`` lets heads
    unmerge. Output tokens are ordered by the position of the token that
    absorbed the others (so time still runs forward), but they no longer
    form a grid (``shape=None``).

    In an encoder with several merge points one merger serves them all:
    :meth:`plan` tells the encoder how many tokens each point keeps (the
    scheduler's ``mode``), so that together they keep
    :attr:`compression_ratio`. Frame cues (motion, edges, colour) need the
    grid, so they are measured once, at the first merge, and handed on in
    ``MergeInfo.cues``, merged like the tokens; attention saliency is
    recomputed from the keys at every point.

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
        """The share of tokens kept now (by all merge points together)."""
        return self.scheduler.target

    def plan(self, num_tokens: int, num_points: int) -> List[int]:
        """Tokens to keep at each of an encoder's ``num_points`` merge
        points out of ``num_tokens`` (protected tokens included), so that
        together they keep :attr:`compression_ratio`; split by the
        scheduler's ``mode``. Read at every forward, so a new ratio takes
        effect at once."""
        return self.scheduler.keep_counts(num_tokens, num_points,
                                          self.num_protected)

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
    def frame_cues(self, frames: Tensor,
                   shape: Tuple[int, int, int]) -> Dict[str, Tensor]:
        """Cue maps measured on the frames, one value per tubelet token.

        They are measured once per clip, where the tokens still form the
        ``shape`` grid, and then travel with the tokens (merged like them)
        to every later merge point.

        Args:
            frames (Tensor): ``[B, C_in, T_in, H_in, W_in]`` clips.
            shape (tuple): ``(T, H, W)`` token grid.

        Returns:
            dict: ``[B, T*H*W]`` maps: ``'motion'`` (normalised speed in
            ``[0, 1]``), ``'edge'`` and ``'color'`` (raw saliency), each
            only when its cue is on.
        """
        cues = {}
        names = self.fusion.names if self.saliency_enabled else ()
        wants_motion = self.motion_enabled and frames.shape[2] >= 2
        if not wants_motion and 'edge' not in names and 'color' not in names:
            return cues
        # Downsampling serves both cues; it is charged to the first.
        with self._scope('motion' if wants_motion else 'saliency',
                         frames.device):
            small = downsample_frames(frames, shape, self.cue_scale)
        if wants_motion:
            with self._scope('motion', frames.device):
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
                cues['motion'] = normalize_per_clip(
                    pool_to_grid(magnitude, shape))  # [B, N]
        with self._scope('saliency', frames.device):
            if 'edge' in names:
                cues['edge'] = pool_to_grid(self.edge(small), shape)
            if 'color' in names:
                cues['color'] = pool_to_grid(self.color(small), shape)
        return cues

    @torch.no_grad()
    def importance(self, x: Tensor, attn: Optional[Tensor],
                   cues: Dict[str, Tensor]) -> Optional[Tensor]:
        """``[B, N]`` importance in ``[0, 1]``, or ``None`` when every cue
        is off. Cues steer discrete choices only, so no graph is kept.

        Args:
            x (Tensor): ``[B, N, C]`` tokens (the attention saliency's input
                when there are no keys).
            attn (Tensor, optional): ``[B, N, d]`` keys of the last block.
            cues (dict): ``[B, N]`` maps from :meth:`frame_cues`, as merged
                so far; a missing map leaves its cue out.
        """
        parts, weights = [], []
        if self.motion_enabled and 'motion' in cues:
            with self._scope('motion', x.device):
                budget = self.compression(cues['motion'])  # [B, N]
                parts.append(budget / self.scheduler.max_ratio)
                weights.append(self.motion_weight)
        if self.saliency_enabled:
            with self._scope('saliency', x.device):
                maps = {
                    name: cues[name]
                    for name in ('edge', 'color')
                    if name in cues and name in self.fusion.names
                }
                if 'attention' in self.fusion.names:
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
                attn: Optional[Tensor] = None,
                keep: Optional[int] = None,
                cues: Optional[Dict[str, Tensor]] = None) -> MergeInfo:
        """Merge ``x`` down to ``keep`` tokens.

        Args:
            x (Tensor): ``[B, N, C]`` tokens (grid order while
                ``shape`` is given, after the protected tokens).
            shape (tuple, optional): ``(T, H, W)`` grid of the non-protected
                tokens, or ``None``.
            size (Tensor, optional): ``[B, N]``; ``None`` means all ones.
            frames (Tensor, optional): ``[B, C_in, T_in, H_in, W_in]`` clips
                for the motion, edge and colour cues; read only when no
                ``cues`` are given and the grid is known.
            attn (Tensor, optional): Keys ``[B, N, d]`` or weights
                ``[B, heads, N, N]`` of the last attention.
            keep (int, optional): Tokens to keep (an encoder's
                :meth:`plan`); ``None``: the scheduler's share of ``N``.
            cues (dict, optional): ``[B, N]`` cue maps an earlier merge
                returned (``MergeInfo.cues``).

        Returns:
            MergeInfo: ``[B, K, C]`` tokens, their sizes, the ``[B, N]``
            index, ``shape=None`` and the cue maps merged like the tokens.
        """
        B, N, _ = x.shape
        P = self.num_protected
        if shape is not None and P + shape[0] * shape[1] * shape[2] != N:
            raise ValueError(f'shape={tuple(shape)} plus '
                             f'num_protected_tokens={P} does not match '
                             f'N={N} tokens')
        if keep is None:
            keep = self.scheduler.keep_count(N, P)
        elif keep < max(P, 1):
            raise ValueError(f'keep={keep} must be >= 1 and >= '
                             f'num_protected_tokens={P}')
        if size is None:
            size = x.new_ones(B, N, dtype=torch.float32)
        index = torch.arange(N, device=x.device).expand(B, N)  # [B, N]
        if keep >= N:
            return MergeInfo(x=x, size=size, index=index, shape=shape,
                             cues=cues)

        if cues is None and frames is not None and shape is not None:
            cues = {
                name: F.pad(cue, (P, 0))  # protected tokens: no cue
                for name, cue in self.frame_cues(frames, shape).items()
            }  # [B, N] each
        keys = attn if attn is not None and attn.dim() == 3 else None
        metric = keys if self.use_keys and keys is not None else x
        cue_importance = self.importance(
            x[:, P:], None if keys is None else keys[:, P:],
            {name: cue[:, P:] for name, cue in (cues or {}).items()})
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
            in_size, n = size, N
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
            if cues:
                # Size-weighted, like the tokens: a merged token's motion is
                # the mean motion of the tubelets it stands for.
                names = list(cues)
                merged, _ = merge_tokens(
                    torch.stack([cues[k] for k in names], dim=-1), in_size,
                    index, keep)  # [B, K, num_cues]
                cues = {k: merged[..., i] for i, k in enumerate(names)}
        return MergeInfo(x=x, size=size, index=index, shape=None, cues=cues)

    def extra_repr(self) -> str:
        return (f'motion={self.motion_enabled}, '
                f'saliency={self.saliency_enabled}, '
                f'strength={self.strength}, scheduler={self.scheduler}')
