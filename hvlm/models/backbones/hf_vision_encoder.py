"""A pretrained image encoder (CLIP, SigLIP) applied to every frame."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor

from hvlm.registry import MODELS
from hvlm.structures import FrameEncoding
from .hf_pretrained import HFPretrainedTower, read_image_statistics


@MODELS.register_module()
class HFVisionEncoder(HFPretrainedTower):
    """The image tower of a local Hugging Face CLIP or SigLIP directory,
    run on each frame of a clip.

    Frames arrive normalised by the data preprocessor, which must use this
    checkpoint's statistics: :attr:`pixel_mean` / :attr:`pixel_std` (0-255
    scale) come from the directory's ``preprocessor_config.json``, as does
    :attr:`image_size`. Frames of another size are resized to it here
    (bilinear, antialiased: what the image processor would do, and on
    normalised frames the same as before normalising, since every output
    pixel is a convex combination of input pixels), unless
    ``interpolate_pos_encoding=True`` asks the ViT to run at the frames'
    own size with interpolated position embeddings. A pipeline that
    decodes at :attr:`image_size` spares the resize.

    Args:
        pretrained (str): Local directory (``save_pretrained`` layout with
            ``preprocessor_config.json``).
        freeze (bool): See :class:`HFPretrainedTower`.
        unfreeze (Sequence[str]): Parameter-name patterns that train
            although frozen, e.g. ``('vision_model.encoder.layers.11.*',)``.
        with_cp (bool): Gradient checkpointing in trainable layers.
        embed_dims (int, optional): Expected width of the patch tokens.
        out_dims (int, optional): Expected width of the pooled embedding.
        interpolate_pos_encoding (bool): Encode frames at their own size.
        frames_per_pass (int, optional): Most frames sent through the ViT
            at once, to bound activation memory on long clips; ``None``:
            all frames of the batch in one pass.
    """

    def __init__(self,
                 pretrained: str,
                 freeze: bool = True,
                 unfreeze: Sequence[str] = (),
                 with_cp: bool = False,
                 embed_dims: Optional[int] = None,
                 out_dims: Optional[int] = None,
                 interpolate_pos_encoding: bool = False,
                 frames_per_pass: Optional[int] = None) -> None:
        super().__init__(pretrained, 'vision', freeze, unfreeze, with_cp,
                         embed_dims, out_dims)
        if frames_per_pass is not None and frames_per_pass < 1:
            raise ValueError(
                f'frames_per_pass={frames_per_pass} must be >= 1 or None')
        self.frames_per_pass = frames_per_pass
        self.interpolate_pos_encoding = interpolate_pos_encoding
        self.in_channels = int(self.tower_cfg.get('num_channels', 3))
        self.patch_size = int(self.tower_cfg['patch_size'])
        mean, std, self.image_size = read_image_statistics(
            pretrained, self.in_channels)
        self.pixel_mean, self.pixel_std = mean, std
        model_size = self.tower_cfg.get('image_size')
        if model_size is not None and not interpolate_pos_encoding and \
                tuple(self.image_size) != (model_size, model_size):
            raise ValueError(
                f'{pretrained}: preprocessor_config.json sizes images '
                f'{self.image_size} but config.json '
                f'{self.key_prefix}image_size is {model_size}; set '
                'interpolate_pos_encoding=True to run at another size')
        if self.family == 'siglip' and self.model.config.vision_use_head is \
                False:
            raise ValueError(
                f'{pretrained}/config.json: {self.key_prefix}vision_use_head '
                'is false, so this SigLIP has no pooled embedding')
        # CLIP puts a class token before the patches; SigLIP has none.
        self.num_prefix_tokens = 1 if self.family == 'clip' else 0
        self._warned_resize = False

    def _out_dims(self) -> Tuple[int, str]:
        if self.family == 'clip':
            return self.model.visual_projection.out_features, 'projection_dim'
        return self.tower_cfg['hidden_size'], 'hidden_size'

    def _fit_size(self, frames: Tensor) -> Tensor:
        """``[N, C, H, W]`` at the checkpoint's size (see the class doc)."""
        if self.interpolate_pos_encoding or tuple(
                frames.shape[-2:]) == tuple(self.image_size):
            return frames
        if not self._warned_resize:
            print_log(
                f'HFVisionEncoder: frames of {tuple(frames.shape[-2:])} are '
                f'resized to {tuple(self.image_size)}, the size of '
                f'{self.pretrained}; decode at that size to skip this',
                logger='current')
            self._warned_resize = True
        return F.interpolate(
            frames,
            size=tuple(self.image_size),
            mode='bilinear',
            align_corners=False,
            antialias=True)

    def encode_frames(self, frames: Tensor) -> Tuple[Tensor, Tensor]:
        """Encode ``frames [N, C, H, W]``.

        Returns:
            tuple: patch tokens ``[N, h, w, C]`` and pooled embeddings
            ``[N, D]``.
        """
        frames = self._fit_size(frames)
        h, w = (s // self.patch_size for s in frames.shape[-2:])
        step = self.frames_per_pass or frames.shape[0]
        tokens, embeds = [], []
        with self.grad_context():
            for chunk in frames.split(step):
                out = self.model(
                    pixel_values=chunk,
                    interpolate_pos_encoding=self.interpolate_pos_encoding)
                tokens.append(out.last_hidden_state[:,
                                                    self.num_prefix_tokens:])
                embeds.append(out.image_embeds if self.family ==
                              'clip' else out.pooler_output)
        tokens = torch.cat(tokens)  # [N, h*w, C]
        return tokens.unflatten(1, (h, w)), torch.cat(embeds)

    def forward(self, x: Tensor) -> FrameEncoding:
        """Encode every frame.

        Args:
            x (Tensor): Normalised clips ``[B, C, T, H, W]`` or images
                ``[B, C, H, W]`` (one frame each).

        Returns:
            FrameEncoding: ``patch_tokens [B, T, h, w, C]`` and ``embeds
            [B, T, D]``.
        """
        if x.dim() == 4:
            x = x.unsqueeze(2)  # [B, C, 1, H, W]
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'expected clips [B, {self.in_channels}, T, H, W] or images '
                f'[B, {self.in_channels}, H, W], got {tuple(x.shape)}')
        B, T = x.shape[0], x.shape[2]
        frames = x.transpose(1, 2).flatten(0, 1)  # [B*T, C, H, W]
        tokens, embeds = self.encode_frames(frames)
        return FrameEncoding(
            patch_tokens=tokens.unflatten(0, (B, T)),  # [B, T, h, w, C]
            embeds=embeds.unflatten(0, (B, T)))  # [B, T, D]
