"""A video transformer whose token count shrinks from stage to stage."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from hvlm.registry import MERGERS, MODELS
from ..layers import (TransformerBlock, TubeletEmbedding,
                      sincos_position_embedding_3d)
from hvlm.structures.merge_info import compose
from hvlm.structures import VideoFeatures
from .frame_token_stem import FrameTokenStem


@MODELS.register_module()
class HierarchicalVideoEncoder(BaseModule):
    """Tubelet embedding, then stages of transformer blocks (with a width
    change between consecutive stages) and token merges after chosen
    blocks.

    Merging is what makes long clips affordable: attention cost falls with
    the square of the token count and every other layer's linearly. By
    default tokens merge between stages; ``merge_after`` places merge
    points after any blocks, inside stages too (as ToMe does), so that the
    first blocks do not run on every token. One merger serves every point.
    A merger with a ``plan`` method (:class:`AdaptiveTokenMerger`) decides
    how many tokens each point keeps so that together they keep its
    ratio; the plan is read at every forward, so a hook that changes the
    ratio changes the whole encoder's. Every merged token carries its
    ``size`` (how many tubelets it stands for) into the following blocks'
    attention, through later merges and out to the heads; ``index``
    records where every tubelet went, so heads can read per-frame features
    after any merge; cue maps a merger returns (``MergeInfo.cues``) are
    handed to the next merge point, so frame cues are measured once per
    clip.

    With a ``stem`` (a pretrained image encoder such as
    :class:`HFVisionEncoder`), each frame's patch tokens replace the
    tubelet embedding (:class:`FrameTokenStem`: ``t`` frames averaged, a
    learned projection from the encoder's width to the first stage's),
    and flow through the same blocks, merges and heads. The encoder's
    pixel statistics are then :attr:`pixel_statistics`, which the model
    hands to its data preprocessor.

    Args:
        in_channels (int): Colour channels of the input.
        patch_size (int | Sequence[int]): Tubelet ``(t, h, w)``. With a
            ``stem``, ``t`` alone (the spatial patch is the encoder's), or
            a triple whose ``h, w`` must equal the encoder's patch.
        embed_dims (Sequence[int]): Width of each stage.
        depths (Sequence[int]): Blocks in each stage.
        num_heads (Sequence[int]): Attention heads of each stage.
        mlp_ratio (float): MLP hidden width relative to the stage width.
        qkv_bias (bool): Bias of the attention's qkv projection.
        drop_rate (float): Dropout after the embedding and projections.
        attn_drop_rate (float): Dropout on attention weights.
        drop_path_rate (float): Stochastic depth of the last block; it rises
            linearly from 0 over all blocks.
        attention (dict): Config of every block's attention (``ATTENTIONS``).
        merger (dict, optional): Config of the merger (``MERGERS``) run at
            every merge point; ``None`` keeps every token.
        merge_after (Sequence[int], optional): Blocks, numbered from 0 over
            all stages, after which tokens merge; the encoder's last block
            cannot be one. ``None``: the last block of every stage but the
            last (between stages).
        with_cp (bool): Recompute each block in the backward pass to save
            activation memory (non-reentrant, so every parameter still gets
            its gradient).
        stem (dict, optional): Config of a pretrained image encoder
            (``MODELS``, e.g. ``dict(type='HFVisionEncoder',
            pretrained=DIR)``) whose patch tokens replace the tubelet
            embedding; ``None``: a tubelet embedding learned from scratch.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 in_channels: int = 3,
                 patch_size: Union[int, Sequence[int]] = (2, 8, 8),
                 embed_dims: Sequence[int] = (96, 192),
                 depths: Sequence[int] = (2, 2),
                 num_heads: Sequence[int] = (3, 6),
                 mlp_ratio: float = 4.0,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 attention: dict = dict(type='FullAttention'),
                 merger: Optional[dict] = dict(type='SpatialPoolMerger'),
                 merge_after: Optional[Sequence[int]] = None,
                 with_cp: bool = False,
                 stem: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        embed_dims, depths, num_heads = (tuple(embed_dims), tuple(depths),
                                         tuple(num_heads))
        if not len(embed_dims) == len(depths) == len(num_heads) or not depths:
            raise ValueError(
                f'embed_dims={embed_dims}, depths={depths} and '
                f'num_heads={num_heads} must be non-empty and of equal length '
                '(one entry per stage)')
        if any(d < 1 for d in depths):
            raise ValueError(f'depths={depths} must all be >= 1')
        ends = [sum(depths[:i + 1]) - 1 for i in range(len(depths))]
        merge_after = tuple(ends[:-1] if merge_after is None else
                            sorted(set(merge_after)))
        if any(not 0 <= b < ends[-1] for b in merge_after):
            raise ValueError(
                f'merge_after={merge_after} must name blocks 0..'
                f'{ends[-1] - 1} (the last block, {ends[-1]}, has no block '
                'after it to speed up)')
        self.merge_after = merge_after
        self.embed_dims = embed_dims
        self.out_channels = embed_dims[-1]
        self.with_cp = with_cp

        if stem is None:
            self.patch_embed = TubeletEmbedding(in_channels, embed_dims[0],
                                                patch_size)
        else:
            self.patch_embed = self._build_stem(stem, in_channels,
                                                patch_size, embed_dims[0])
        self.pos_drop = nn.Dropout(drop_rate)

        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        self.merger = None if merger is None else MERGERS.build(merger)
        self.transitions = nn.ModuleList()
        for i, (dims, depth, heads) in enumerate(
                zip(embed_dims, depths, num_heads)):
            stage_rates = rates[sum(depths[:i]):sum(depths[:i + 1])]
            self.stages.append(
                nn.ModuleList(
                    TransformerBlock(
                        dims,
                        heads,
                        mlp_ratio=mlp_ratio,
                        qkv_bias=qkv_bias,
                        drop=drop_rate,
                        attn_drop=attn_drop_rate,
                        drop_path=rate,
                        attention_cfg=attention) for rate in stage_rates))
            if i + 1 == len(embed_dims):
                break
            self.transitions.append(
                nn.Identity() if embed_dims[i + 1] == dims else nn.Sequential(
                    nn.Linear(dims, embed_dims[i + 1]),
                    nn.LayerNorm(embed_dims[i + 1])))
        self.norm = nn.LayerNorm(embed_dims[-1])

    @staticmethod
    def _build_stem(stem: dict, in_channels: int,
                    patch_size: Union[int, Sequence[int]],
                    embed_dims: int) -> FrameTokenStem:
        if stem.get('pretrained') is None:
            raise ValueError(
                'the stem has no pretrained directory: run with '
                '--cfg-options model.backbone.stem.pretrained=DIR (a local '
                'CLIP or SigLIP directory, see docs/PRETRAINED.md)')
        encoder = MODELS.build(stem)
        if encoder.in_channels != in_channels:
            raise ValueError(
                f'in_channels={in_channels} but the stem '
                f'{encoder.pretrained} encodes {encoder.in_channels}')
        if isinstance(patch_size, int):
            return FrameTokenStem(encoder, embed_dims, patch_size)
        patch_size = tuple(patch_size)
        if len(patch_size) != 3 or tuple(patch_size[1:]) != (
                encoder.patch_size, ) * 2:
            raise ValueError(
                f'patch_size={patch_size}: with a stem give the temporal '
                'patch t alone, or (t, p, p) with p the patch of '
                f'{encoder.pretrained} ({encoder.patch_size})')
        return FrameTokenStem(encoder, embed_dims, patch_size[0])

    @property
    def pixel_statistics(self) -> Optional[Tuple[List[float], List[float],
                                                 str]]:
        """``(mean, std, source)`` on the 0-255 scale that the stem's
        pretrained encoder expects its frames normalised with; ``None``
        without a pretrained stem."""
        if not isinstance(self.patch_embed, FrameTokenStem):
            return None
        encoder = self.patch_embed.encoder
        return (encoder.pixel_mean, encoder.pixel_std,
                f'{encoder.pretrained}/preprocessor_config.json')

    def _run_block(self, block: nn.Module, x: Tensor,
                   shape: Optional[Tuple[int, int, int]],
                   size: Optional[Tensor]) -> Tensor:
        if self.with_cp and torch.is_grad_enabled():
            return checkpoint(block, x, shape, size, use_reentrant=False)
        return block(x, shape, size)

    def forward(
        self,
        x: Optional[Tensor],
        embedded: Optional[Tuple[Tensor, Tuple[int, int, int]]] = None,
        frame_tokens: Optional[Tensor] = None
    ) -> VideoFeatures:
        """Encode clips.

        Args:
            x (Tensor, optional): ``[B, C_in, T, H, W]`` normalised clips;
                ``None`` with ``frame_tokens``.
            embedded (tuple, optional): ``self.patch_embed(x)`` when the
                caller has it already (the model's router does).
            frame_tokens (Tensor, optional): the stem encoder's patch
                tokens ``[B, T, h, w, C_enc]`` read from a feature cache,
                in place of ``x``: the ViT is skipped.

        Returns:
            VideoFeatures: final tokens and how they map to the tubelets.
        """
        if frame_tokens is not None:
            num_frames, clips = self._check_cached(frame_tokens), None
            if embedded is None:
                embedded = self.patch_embed.embed_tokens(frame_tokens)
        else:
            if x is None or x.dim() != 5:
                got = 'None' if x is None else f'shape {tuple(x.shape)}'
                raise ValueError(f'expected clips [B, C, T, H, W], got {got}')
            num_frames = x.shape[2]
            clips = x  # [B, C_in, T, H, W], for mergers that read frames
        # [B, N0, C0], grid (T0, H0, W0)
        x, grid = self.patch_embed(x) if embedded is None else embedded
        B, N0, _ = x.shape
        pos = sincos_position_embedding_3d(grid, x.shape[-1], device=x.device)
        x = self.pos_drop(x + pos.to(x.dtype))  # [B, N0, C0]

        shape: Optional[Tuple[int, int, int]] = grid
        # size=None while every token is one tubelet: attention then needs no
        # bias and keeps its fastest kernel.
        size: Optional[Tensor] = None
        index = torch.arange(N0, device=x.device).expand(B, N0)  # [B, N0]
        cues = None
        plan = self._merge_plan(N0)
        block_id = 0
        for i, stage in enumerate(self.stages):
            for block in stage:
                keep = plan.get(block_id)
                # A point whose plan keeps every token is skipped, so ratio
                # 1.0 runs exactly the encoder without a merger.
                merging = block_id in plan and (keep is None
                                                or keep < x.shape[1])
                wants_keys = merging and hasattr(block.attn, 'keep_keys')
                if wants_keys:
                    block.attn.keep_keys = True
                x = self._run_block(block, x, shape, size)  # [B, N, C_i]
                block_id += 1
                if not merging:
                    continue
                keys = None
                if wants_keys:
                    # Keys of the block just run (ToMe's matching metric);
                    # dropped right away so no clip's keys outlive it.
                    keys, block.attn.last_keys = block.attn.last_keys, None
                    block.attn.keep_keys = False
                extra = {} if keep is None else dict(keep=keep)
                if cues is not None:
                    extra['cues'] = cues
                info = self.merger(x, shape=shape, size=size, frames=clips,
                                   attn=keys, **extra)
                x, size, shape = info.x, info.size, info.shape  # [B, N', C_i]
                cues = getattr(info, 'cues', None)
                index = compose(index, info.index)  # [B, N0]
            if i < len(self.transitions):
                x = self.transitions[i](x)  # [B, N', C_{i+1}]
        x = self.norm(x)
        if size is None:
            size = x.new_ones(x.shape[:2])  # [B, N]
        return VideoFeatures(
            tokens=x,
            size=size,
            index=index,
            grid=grid,
            temporal_patch=self.patch_embed.patch_size[0],
            num_frames=num_frames)

    def _check_cached(self, frame_tokens: Tensor) -> int:
        """Refuse cached tokens where they cannot stand for the stem's
        output; the number of frames otherwise."""
        if not isinstance(self.patch_embed, FrameTokenStem):
            raise ValueError('cached frame tokens need a backbone with a '
                             'pretrained stem (backbone.stem)')
        if frame_tokens.dim() != 5 or frame_tokens.shape[-1] != \
                self.patch_embed.encoder.embed_dims:
            raise ValueError(
                'cached frame tokens must be [B, T, h, w, '
                f'{self.patch_embed.encoder.embed_dims}], got '
                f'{tuple(frame_tokens.shape)}')
        if any(p.requires_grad
               for p in self.patch_embed.encoder.parameters()):
            raise ValueError(
                'the stem encoder has trainable weights (unfreeze or LoRA), '
                'so features cached from its frozen weights are stale; '
                'train on videos instead')
        # Mergers that measure cues on the pixels have none to read.
        if getattr(self.merger, 'motion_enabled', False) or getattr(
                self.merger, 'saliency_enabled', False):
            raise ValueError(
                f'{type(self.merger).__name__} reads motion/saliency cues '
                'from the frames, which a feature cache does not hold; '
                'disable them (motion=dict(enabled=False), '
                'saliency=dict(enabled=False)) to train from the cache')
        return frame_tokens.shape[1]

    def _merge_plan(self, num_tokens: int) -> Dict[int, Optional[int]]:
        """Block id of every merge point -> tokens to keep after it, or
        ``None`` where the merger decides (a merger without ``plan``)."""
        if self.merger is None or not self.merge_after:
            return {}
        if not hasattr(self.merger, 'plan'):
            return dict.fromkeys(self.merge_after)
        return dict(
            zip(self.merge_after,
                self.merger.plan(num_tokens, len(self.merge_after))))
