"""Content-aware bipartite token merging (ToMe plus motion and saliency)."""
import math
import time
from contextlib import contextmanager, nullcontext
from functools import lru_cache
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
from .grid_maps import downsample_frames, pool_to_grid
from hvlm.structures.merge_info import (MergeInfo, compose, gather_rows,
                                        merge_tokens, sum_tokens)
from .motion_based_compression import MotionBasedCompression, check_ratios
from .motion_magnitude import MotionMagnitude
from .multi_saliency_fusion import MultiSaliencyFusion
from .temporal_merge_scheduler import TemporalMergeScheduler
from .token_similarity import TokenSimilarity

# Priority of protected tokens: below any real priority, but finite so that
# a stable sort keeps them in order.
_PROTECTED = -1e4


@lru_cache(maxsize=16)
def _positions(n: int, device: torch.device) -> Tuple[Tensor, Tensor]:
    """``[n]`` token positions and their float parity (1 for ToMe's B set),
    cached: every merge round needs them."""
    with torch.inference_mode(False):
        positions = torch.arange(n, device=device)
        return positions, (positions % 2).float()


# The key under which, with a ``temporal_window``, every token's time step
# travels in ``MergeInfo.cues`` to later merge points (not a frame cue: not
# averaged and not read by the importance). Merges stay inside fixed
# windows, so any step of a merged token names its window.
TIME_STEP = 'time_step'


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
            downsampled frames the flow runs on), ``normalize`` (True: each
            clip's token speeds are divided by its fastest token's, but
            never by less than ``min_motion``, so motion is in ``[0, 1]``
            and a static clip's flow noise stays small; False: the speed in
            patches per frame is used as is), ``min_motion`` (patches per
            frame, 0.5: the flow of a static clip measures about 0.1 at
            its borders and edges, the demo clips' fastest tokens about 1),
            ``weight`` (share in the importance), ``sensitivity`` (of the
            keep budget, per unit of motion).
        saliency (dict): ``enabled`` (bool); ``edge``, ``attention``,
            ``color``: bool or a weight for each source; ``weight`` (share in
            the importance); ``learnable`` (fusion weights as parameters).
        adaptive_merging (dict): ``target_compression_ratio`` (share of
            tokens kept, 0.5), ``min_compression_ratio`` (0.25),
            ``max_compression_ratio`` (1.0), ``mode`` and ``temporal_window``
            of :class:`TemporalMergeScheduler`.
        strength (float): Importance weight against similarity and the
            alternating split; 8 lets an importance gap of 0.125 override
            the split (docs/TOKEN_MERGING.md compares 4 and 8 over thirteen
            seeds).
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
                 strength: float = 8.0,
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
                min_motion=motion.pop('min_motion', 0.5))
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
        """A profiler scope, while a profiler runs (entering one costs as
        much as a few of the cues' small ops, so not otherwise); with
        ``profile=True`` also wall time added to ``timings[name]``
        (synchronising CUDA so the time is real)."""
        with (record_function(f'merger/{name}')
              if torch.autograd._profiler_enabled() else nullcontext()):
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
            dict: ``[B, T*H*W]`` maps: ``'motion'`` (each token's mean
            speed in patches per frame, rescaled per clip by
            :meth:`MotionMagnitude.rescale` when ``normalize`` is set),
            ``'edge'`` and ``'color'`` (raw saliency), each only when its
            cue is on.
        """
        names = self.fusion.names if self.saliency_enabled else ()
        wants_motion = self.motion_enabled and frames.shape[2] >= 2
        frame_maps = [name for name in ('edge', 'color') if name in names]
        if not wants_motion and not frame_maps:
            return {}
        # The downsampled frames, their grey version (flow and edges both
        # run on grey) and the pooling onto the tokens serve every cue; they
        # are charged to the first.
        first = 'motion' if wants_motion else 'saliency'
        maps = []  # [B, T or P, h, w] per cue
        with self._scope(first, frames.device):
            small = downsample_frames(frames, shape, self.cue_scale)
            grey = small.mean(1, keepdim=True)  # [B, 1, T, h, w]
            if wants_motion:
                # window_size is in input pixels: scale it to the small
                # frames (15 px at 64 -> 16 px: radius 2, window 5).
                shrink = small.shape[-1] / frames.shape[-1]
                radius = math.ceil(self.flow.window_size // 2 * shrink)
                # One frame pair per tubelet: its own motion, at a fraction
                # of the cost of every consecutive pair.
                stride = math.ceil(small.shape[2] / shape[0])
                # In patches per frame: cue_scale pixels per patch.
                maps.append(
                    self.magnitude.raw_speed(
                        self.flow(grey, window_size=2 * radius + 1,
                                  stride=stride)).div_(
                                      self.cue_scale))  # [B, P, h, w]
        if frame_maps:
            with self._scope('saliency', frames.device):
                if 'edge' in frame_maps:
                    maps.append(self.edge(grey))  # [B, T, h, w]
                if 'color' in frame_maps:
                    maps.append(self.color(small))  # [B, T, h, w]
        with self._scope(first, frames.device):
            pooled = pool_to_grid(maps, shape)  # [B, S, N], in one go
            cues = dict(
                zip(['motion'] * wants_motion + frame_maps, pooled.unbind(1)))
            if wants_motion:  # the fastest token, not pixel, gets 1
                cues['motion'] = self.magnitude.rescale(cues['motion'])
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
        importance = parts[0] * (weights[0] / total)  # [B, N]
        for part, weight in zip(parts[1:], weights[1:]):
            importance.add_(part, alpha=weight / total)
        return importance

    # ------------------------------------------------------------------
    # matching
    # ------------------------------------------------------------------
    def _merge_round(self, x: Tensor, size: Optional[Tensor], metric: Tensor,
                     importance: Tensor, time_step: Optional[Tensor], r: int,
                     keep: int) -> Optional[Tuple]:
        """Remove ``r`` tokens by one bipartite matching (fewer when the
        ``temporal_window`` leaves fewer A tokens a partner).

        The protected tokens are the first ``num_protected``: they never
        merge and the output keeps the input order, so they stay first.

        Args:
            x, size, metric, importance: ``[B, n, C]``, ``[B, n]`` (or
                ``None``: all ones), ``[B, n, d]``, ``[B, n]`` of the tokens.
            time_step (Tensor, optional): ``[B, n]`` time step of each
                token (of the one that absorbed the others), only with a
                ``temporal_window``.
            r (int): Tokens to remove.
            keep (int): Tokens the merge point keeps: when this round
                reaches it, no round follows, and the merged metric and
                importance, which only a next round reads, are skipped
                (returned as ``None``).

        Returns:
            tuple or None: merged ``x``, ``size``, ``metric``,
            ``importance``, ``time_step``, the ``[B, n]`` index and the
            number of tokens removed; ``None`` when no A token of some
            clip has a partner inside the ``temporal_window``.
        """
        B, n, _ = x.shape
        P = self.num_protected
        positions, parity = _positions(n, x.device)
        # Odd tokens -> B, as ToMe, unless importance outranks the pattern.
        priority = torch.add(parity, importance, alpha=self.strength)
        if P:
            priority[:, :P] = _PROTECTED
        num_b = min(n // 2, n - P)
        order = priority.argsort(dim=1, descending=True, stable=True)
        b_idx, a_idx = order[:, :num_b], order[:, num_b:]  # [B, nb], [B, na]
        ordered = gather_rows(metric, order)  # [B, n, d]: B set, then A
        scores = self.similarity(ordered[:, num_b:], ordered[:, :num_b])
        if time_step is not None:
            steps = time_step.gather(1, order)  # [B, n]
            allowed = self.scheduler.temporal_mask(steps[:, num_b:],
                                                   steps[:, :num_b])
            scores = scores.masked_fill(~allowed, -torch.inf)
        node_max, node_idx = scores.max(dim=-1)  # [B, na]
        if time_step is not None:
            # Only A tokens with a partner inside the window may merge, and
            # every clip removes the same number of tokens.
            r = min(r, int(node_max.isfinite().sum(1).min()))
            if r == 0:
                return None
        if r < a_idx.shape[1] or time_step is not None:
            rank = torch.sub(node_max, importance.gather(1, a_idx),
                             alpha=self.strength)  # [B, na]
            if P:
                rank = rank.masked_fill(a_idx < P, -torch.inf)
            if time_step is not None:
                rank = rank.masked_fill(node_max.isneginf(), -torch.inf)
            edge = rank.argsort(dim=-1, descending=True)  # [B, na]
            src = edge[:, :r]  # [B, r], A-local
            a_idx, node_idx = a_idx.gather(1, src), node_idx.gather(1, src)
        # (Else every A token merges, in whatever order: no ranking.)
        # Every token points at the token that represents it afterwards.
        rep = positions.repeat(B, 1)  # [B, n]
        rep.scatter_(1, a_idx, b_idx.gather(1, node_idx))
        survivor = rep == positions  # [B, n], n - r per row
        index = (survivor.cumsum(1) - 1).gather(1, rep)  # [B, n] slots
        num_slots = n - r
        merged, new_size = merge_tokens(x, size, index, num_slots)
        if time_step is not None:
            time_step = time_step[survivor].view(B, num_slots)
        if num_slots == keep:
            return merged, new_size, None, None, time_step, index, r
        metric, _ = merge_tokens(metric, size, index, num_slots)
        importance = importance.new_zeros(B, num_slots).scatter_reduce_(
            1, index, importance, 'amax', include_self=False)
        return merged, new_size, metric, importance, time_step, index, r

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
        if keep >= N:
            index = torch.arange(N, device=x.device).expand(B, N)  # [B, N]
            if size is None:
                size = x.new_ones(B, N, dtype=torch.float32)
            return MergeInfo(x=x, size=size, index=index, shape=shape,
                             cues=cues)

        if cues is None and frames is not None and shape is not None:
            cues = self.frame_cues(frames, shape)  # [B, N - P] each
            if P:  # protected tokens: no cue
                cues = {name: F.pad(cue, (P, 0)) for name, cue in cues.items()}
        keys = attn if attn is not None and attn.dim() == 3 else None
        metric = keys if self.use_keys and keys is not None else x

        def unprotected(t: Tensor) -> Tensor:
            return t[:, P:] if P else t

        importance = self.importance(
            unprotected(x), None if keys is None else unprotected(keys),
            {name: unprotected(cue) for name, cue in (cues or {}).items()})
        if importance is None:
            importance = x.new_zeros(B, N - P, dtype=torch.float32)
        if P:
            importance = F.pad(importance, (P, 0))  # [B, N]
        time_step = None
        if self.scheduler.temporal_window is not None:
            time_step = self._time_steps(B, N, shape, cues, x.device)

        with self._scope('matching', x.device):
            metric = metric.detach()
            in_size, n, index = size, N, None
            # Each round removes at least one token, so N rounds always
            # suffice; usually one or two do.
            for _ in range(N):
                movable = (n - P) - min(n // 2, n - P)  # unprotected A
                r = min(n - keep, movable)
                if r <= 0:
                    break
                merged = self._merge_round(x, size, metric, importance,
                                           time_step, r, keep)
                if merged is None:
                    break
                x, size, metric, importance, time_step, step, r = merged
                index = step if index is None else compose(index, step)
                n -= r
            if n != keep:
                window = self.scheduler.temporal_window
                limit = '' if window is None else \
                    f' and temporal_window={window}'
                raise RuntimeError(
                    f'could not merge {N} tokens down to {keep} with {P} '
                    f'protected tokens{limit} (stopped at {n}); raise the '
                    'keep ratio' + (' or the window' if limit else ''))
            frame_maps = {k: v for k, v in (cues or {}).items()
                          if k != TIME_STEP}
            if frame_maps:
                # Size-weighted, like the tokens: a merged token's motion is
                # the mean motion of the tubelets it stands for (the merged
                # sizes are the sums of the input sizes).
                stacked = torch.stack(list(frame_maps.values()),
                                      -1)  # [B, N, S]
                if in_size is not None:
                    stacked = stacked * in_size.unsqueeze(-1)
                merged = sum_tokens(stacked, index, keep) / size.unsqueeze(-1)
                cues = dict(zip(frame_maps, merged.unbind(-1)))  # [B, K] each
            if time_step is not None:
                # Steps travel on, so the window holds at later points too.
                cues = dict(cues or {}, **{TIME_STEP: time_step})  # [B, K]
        return MergeInfo(x=x, size=size, index=index, shape=None, cues=cues)

    def _time_steps(self, B: int, N: int,
                    shape: Optional[Tuple[int, int, int]],
                    cues: Optional[Dict[str, Tensor]],
                    device: torch.device) -> Tensor:
        """``[B, N]`` time step of every token: carried from an earlier
        merge point when it left them in the cues, else the grid's frame
        index (protected tokens: 0; they never merge), else 0 for all
        (tokens without a grid or history: one step)."""
        if cues is not None and TIME_STEP in cues:
            steps = cues[TIME_STEP]
            if steps.shape != (B, N):
                raise ValueError(f'cues[{TIME_STEP!r}] has shape '
                                 f'{tuple(steps.shape)}, expected {(B, N)}')
            return steps
        steps = torch.zeros(B, N, dtype=torch.long, device=device)
        if shape is not None:
            steps[:, N - shape[0] * shape[1] * shape[2]:] = torch.arange(
                shape[0], device=device).repeat_interleave(
                    shape[1] * shape[2])  # [B, N]
        return steps

    def extra_repr(self) -> str:
        return (f'motion={self.motion_enabled}, '
                f'saliency={self.saliency_enabled}, '
                f'strength={self.strength}, scheduler={self.scheduler}')
