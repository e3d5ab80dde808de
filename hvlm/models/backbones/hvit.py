"""HViT: a hierarchical vision transformer with global attention per stage
(the backbone of the SimCLR + fine-tuning system, issue #16)."""
import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from hvlm.registry import ATTENTIONS, MODELS
from ..layers import TransformerBlock

SECOND_STREAMS = ('spectral', 'ndvi', 'motion')


def interpolate_pos_embed(pos: Tensor, grid: Tuple[int, int]) -> Tensor:
    """Resize learned positions ``[1, h0 * w0, C]`` (a square ``h0 = w0``
    grid) to ``grid = (h, w)`` with bicubic interpolation, as ViTs do when
    fine-tuned at another resolution; the same tensor when sizes agree."""
    _, n, C = pos.shape
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(f'position table of {n} entries is not a square '
                         'grid')
    if (side, side) == tuple(grid):
        return pos
    table = pos.reshape(1, side, side, C).permute(0, 3, 1, 2)  # [1,C,s,s]
    table = F.interpolate(
        table, size=tuple(grid), mode='bicubic', align_corners=False)
    return table.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], C)


def pseudo_ndvi(rgb: Tensor, eps: float = 1e-6) -> Tensor:
    """``(G - R) / (G + R)`` per pixel of ``rgb`` ``[B, 3, H, W]`` with
    values >= 0 (0-1 or 0-255 scale, *before* mean/std normalisation):
    without a near-infrared band, green stands in for NIR (the "green-red
    vegetation index"), in [-1, 1]. Returns ``[B, 1, H, W]``."""
    r, g = rgb[:, 0:1], rgb[:, 1:2]
    return (g - r) / (g + r).clamp_min(eps)


def frame_differences(frames: Tensor) -> Tensor:
    """Motion stream of ``frames`` ``[B, T, C, H, W]``: ``x_t - x_{t-1}``,
    zeros for the first frame; same shape."""
    diff = frames[:, 1:] - frames[:, :-1]
    return torch.cat([torch.zeros_like(frames[:, :1]), diff], dim=1)


class PatchMerging(nn.Module):
    """Concatenate each 2x2 neighbourhood of tokens and project ``4C`` to
    ``2C`` (Swin's merge): a quarter of the tokens, twice the width. Odd
    grids are zero-padded on the bottom/right first.

    Args:
        in_dims (int): Width ``C`` before merging.
        out_dims (int): Width after merging (``2C`` in HViT).
    """

    def __init__(self, in_dims: int, out_dims: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * in_dims)
        self.reduction = nn.Linear(4 * in_dims, out_dims, bias=False)

    def forward(self, x: Tensor,
                grid: Tuple[int, int]) -> Tuple[Tensor, Tuple[int, int]]:
        """``x [B, h*w, C]`` on ``grid (h, w)`` -> ``[B, h'*w', out]``."""
        B, N, C = x.shape
        h, w = grid
        x = x.reshape(B, h, w, C)
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))  # [B, h+h%2, w+w%2, C]
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2],
                       x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        h, w = x.shape[1], x.shape[2]  # [B, h', w', 4C]
        x = self.reduction(self.norm(x.reshape(B, h * w, 4 * C)))
        return x, (h, w)


@MODELS.register_module()
class HViT(BaseModule):
    """Hierarchical vision transformer: convolutional patch embedding,
    learned absolute positions, stages of transformer blocks with *global*
    attention (not Swin windows), patch merging between stages (a quarter
    of the tokens, twice the width), mean pooling and a final LayerNorm.

    The attention of every block is built from ``ATTENTIONS``, so any of
    hvlm's efficient attentions replaces the quadratic one by config, e.g.
    ``attention=dict(type='LocalGlobalAttention', window_size=64)``; blocks
    are given the token grid as ``shape=(1, h, w)``. Learned positions are
    trained at ``img_size`` and interpolated (bicubic) for any other input
    size, so fine-tuning and testing at another resolution works.

    Inputs: images ``[B, C, H, W]`` or video frames ``[B, T, C, H, W]``
    (every frame encoded on its own, which is also how it serves as a
    per-frame stem). Outputs of :meth:`forward`: ``[B, C_out]`` or
    ``[B, T, C_out]`` pooled features; :meth:`forward_tokens` gives the
    last stage's tokens and grid.

    DFCA (``use_dfca=True``): after the patch embedding the RGB tokens
    attend to the tokens of a second stream (``dfca.stream``):

    - ``'spectral'``: input channels beyond ``in_channels`` (e.g. a
      multispectral band set, ``dfca.stream_channels`` of them);
    - ``'ndvi'``: the pseudo-NDVI ``(G - R) / (G + R)`` of the RGB
      channels; it needs the un-normalised image, so give
      ``dfca.pixel_mean``/``pixel_std`` (the preprocessor's, 0-1 scale)
      to undo the normalisation;
    - ``'motion'``: frame differences of video input ``[B, T, C, H, W]``.

    The second stream has its own patch embedding and the same positions;
    the fusion layer is ``dfca.attention`` from ``ATTENTIONS`` (default
    :class:`DFCA`). ``use_dfca=True`` without a stream is an error rather
    than a silently plain model.

    Args:
        img_size (int): Side the position table is learned for.
        patch_size (int): Side of the convolutional patch embedding.
        in_channels (int): RGB (or other primary) channels.
        embed_dim_rgb (int): Width of the first stage; doubles at every
            patch merge.
        depths (Sequence[int]): Blocks per stage.
        num_heads (Sequence[int]): Heads per stage.
        mlp_ratio (float): MLP width relative to the stage width.
        qkv_bias (bool): Bias of the qkv projection.
        drop_rate (float): Dropout after embedding and projections.
        attn_drop_rate (float): Dropout on attention weights.
        drop_path_rate (float): Stochastic depth of the last block, rising
            linearly from 0 over all blocks.
        attention (dict): ``ATTENTIONS`` config of every block.
        with_cp (bool): Gradient checkpointing of every block
            (non-reentrant: every parameter still gets its gradient).
        use_dfca (bool): Fuse a second stream with DFCA.
        dfca (dict, optional): ``stream`` (one of ``'spectral'``,
            ``'ndvi'``, ``'motion'``), ``stream_channels`` (spectral),
            ``pixel_mean``/``pixel_std`` (ndvi), ``attention`` (config of
            the fusion layer, default ``dict(type='DFCA')``).
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 img_size: int = 224,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 embed_dim_rgb: int = 96,
                 depths: Sequence[int] = (2, 2, 6, 2),
                 num_heads: Sequence[int] = (3, 6, 12, 24),
                 mlp_ratio: float = 4.0,
                 qkv_bias: bool = True,
                 drop_rate: float = 0.,
                 attn_drop_rate: float = 0.,
                 drop_path_rate: float = 0.1,
                 attention: dict = dict(type='FullAttention'),
                 with_cp: bool = False,
                 use_dfca: bool = False,
                 dfca: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        depths, num_heads = tuple(depths), tuple(num_heads)
        if not depths or len(depths) != len(num_heads):
            raise ValueError(f'depths={depths} and num_heads={num_heads} '
                             'must be non-empty and of equal length')
        if any(d < 1 for d in depths):
            raise ValueError(f'depths={depths} must all be >= 1')
        if img_size % patch_size:
            raise ValueError(f'img_size={img_size} must be a multiple of '
                             f'patch_size={patch_size}')
        self.img_size, self.patch_size = img_size, patch_size
        self.in_channels = in_channels
        self.with_cp = with_cp
        self.embed_dims = tuple(embed_dim_rgb * 2**i
                                for i in range(len(depths)))
        self.out_channels = self.embed_dims[-1]

        self.patch_embed = nn.Conv2d(
            in_channels, embed_dim_rgb, patch_size, stride=patch_size)
        side = img_size // patch_size
        self.pos_embed = nn.Parameter(torch.zeros(1, side * side,
                                                  embed_dim_rgb))
        nn.init.trunc_normal_(self.pos_embed, std=.02)
        self.pos_drop = nn.Dropout(drop_rate)

        self.dfca_stream = self._check_dfca(use_dfca, dfca)
        if self.dfca_stream is not None:
            self._build_dfca(dict(dfca), embed_dim_rgb, num_heads[0],
                             attn_drop_rate, drop_rate)

        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        self.merges = nn.ModuleList()
        for i, (dims, depth, heads) in enumerate(
                zip(self.embed_dims, depths, num_heads)):
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
                        attention_cfg=attention)
                    for rate in rates[sum(depths[:i]):sum(depths[:i + 1])]))
            if i + 1 < len(depths):
                self.merges.append(PatchMerging(dims, 2 * dims))
        self.norm = nn.LayerNorm(self.out_channels)

    @staticmethod
    def _check_dfca(use_dfca: bool, dfca: Optional[dict]) -> Optional[str]:
        if not use_dfca:
            return None
        stream = (dfca or {}).get('stream')
        if stream is None:
            raise ValueError(
                'use_dfca=True but no second stream is configured: set '
                "dfca=dict(stream='spectral' | 'ndvi' | 'motion', ...) or "
                'use_dfca=False')
        if stream not in SECOND_STREAMS:
            raise ValueError(f'dfca.stream={stream!r} must be one of '
                             f'{SECOND_STREAMS}')
        return stream

    def _build_dfca(self, cfg: dict, dims: int, heads: int,
                    attn_drop: float, drop: float) -> None:
        stream = cfg.pop('stream')
        channels = cfg.pop('stream_channels', None)
        mean, std = cfg.pop('pixel_mean', None), cfg.pop('pixel_std', None)
        attention = dict(cfg.pop('attention', None) or dict(type='DFCA'))
        if cfg:
            raise ValueError(f'dfca has unknown keys {sorted(cfg)}; expected '
                             'stream, stream_channels, pixel_mean, '
                             'pixel_std, attention')
        if stream == 'spectral':
            if not channels or channels < 1:
                raise ValueError("dfca.stream='spectral' needs "
                                 'dfca.stream_channels (the number of input '
                                 f'channels after the first {self.in_channels})')
        elif stream == 'ndvi':
            channels = 1
            if self.in_channels < 2:
                raise ValueError("dfca.stream='ndvi' needs red and green "
                                 f'channels, in_channels={self.in_channels}')
        else:
            channels = self.in_channels
        self.stream_channels = channels
        if (mean is None) != (std is None):
            raise ValueError('dfca.pixel_mean and dfca.pixel_std must be '
                             'given together')
        if mean is not None:
            self.register_buffer(
                'stream_mean', torch.tensor(mean).view(1, -1, 1, 1).float(),
                persistent=False)
            self.register_buffer(
                'stream_std', torch.tensor(std).view(1, -1, 1, 1).float(),
                persistent=False)
        else:
            self.stream_mean = self.stream_std = None
        self.stream_embed = nn.Conv2d(
            channels, dims, self.patch_size, stride=self.patch_size)
        attention.update(embed_dims=dims, num_heads=heads)
        attention.setdefault('attn_drop', attn_drop)
        attention.setdefault('proj_drop', drop)
        self.dfca = ATTENTIONS.build(attention)

    def _second_stream(self, x: Tensor,
                       frames: Optional[Tensor]) -> Tensor:
        """The second stream's image ``[B', C_s, H, W]`` for the RGB
        images ``x`` (``frames``: the video ``[B, T, C, H, W]`` they came
        from, for motion)."""
        if self.dfca_stream == 'spectral':
            return x[:, self.in_channels:]
        if self.dfca_stream == 'ndvi':
            rgb = x[:, :3]
            if self.stream_mean is not None:
                rgb = rgb * self.stream_std + self.stream_mean
            return pseudo_ndvi(rgb.clamp_min(0))
        if frames is None:
            raise ValueError("dfca.stream='motion' needs video input "
                             '[B, T, C, H, W]')
        return frame_differences(frames).flatten(0, 1)

    def _check_input(self, x: Tensor) -> None:
        channels = self.in_channels + (self.stream_channels
                                       if self.dfca_stream == 'spectral' else
                                       0)
        if x.shape[1] != channels:
            raise ValueError(f'HViT expects {channels} channels, got input '
                             f'of shape {tuple(x.shape)}')

    def _run_block(self, block: nn.Module, x: Tensor,
                   shape: Tuple[int, int, int]) -> Tensor:
        if self.with_cp and torch.is_grad_enabled():
            return checkpoint(block, x, shape, None, use_reentrant=False)
        return block(x, shape, None)

    def forward_tokens(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        """Last-stage tokens ``[B', h*w, C_out]`` (after the final
        LayerNorm) and their grid ``(h, w)``; ``B' = B`` for images,
        ``B * T`` for frames."""
        tokens, grid = self._encode(x)
        return self.norm(tokens), grid

    def _encode(self, x: Tensor) -> Tuple[Tensor, Tuple[int, int]]:
        frames = None
        if x.dim() == 5:  # [B, T, C, H, W]
            frames = x
            x = x.flatten(0, 1)  # [B*T, C, H, W]
        elif x.dim() != 4:
            raise ValueError('HViT expects images [B, C, H, W] or frames '
                             f'[B, T, C, H, W], got {tuple(x.shape)}')
        if self.dfca_stream == 'motion' and frames is not None:
            frames = frames[:, :, :self.in_channels]
        self._check_input(x)
        rgb = x[:, :self.in_channels]
        tokens = self.patch_embed(rgb)  # [B', C0, h, w]
        grid = tuple(tokens.shape[-2:])
        pos = interpolate_pos_embed(self.pos_embed, grid)  # [1, h*w, C0]
        tokens = tokens.flatten(2).transpose(1, 2) + pos  # [B', h*w, C0]
        if self.dfca_stream is not None:
            other = self.stream_embed(self._second_stream(x, frames))
            other = other.flatten(2).transpose(1, 2) + pos  # [B', h*w, C0]
            tokens = self.dfca(tokens, memory=other)
        tokens = self.pos_drop(tokens)
        for i, stage in enumerate(self.stages):
            for block in stage:
                tokens = self._run_block(block, tokens, (1, ) + grid)
            if i < len(self.merges):
                tokens, grid = self.merges[i](tokens, grid)
        return tokens, grid

    def forward(self, x: Tensor) -> Tensor:
        """Mean-pooled features: ``[B, C_out]`` for images ``[B, C, H, W]``,
        ``[B, T, C_out]`` for frames ``[B, T, C, H, W]``.

        Mean pool, then the final LayerNorm (the original model's order).
        """
        tokens, _ = self._encode(x)
        pooled = self.norm(tokens.mean(1))  # [B', C_out]
        if x.dim() == 5:
            return pooled.reshape(x.shape[0], x.shape[1], -1)
        return pooled
