"""ViTA: a Vita-CLIP-style video prompting of the image tower."""
import torch
import torch.nn as nn
from torch import Tensor

from hvlm.models.layers import ClipTowers, encode_images
from hvlm.registry import ADAPTERS
from .video_coop import VideoCoOp


@ADAPTERS.register_module()
class ViTA(VideoCoOp):
    """Video prompts in every layer of the image tower, after Vita-CLIP
    (Wasim et al., CVPR 2023), with VideoCoOp's learned text context.

    Before each layer ``i`` the tokens of every frame ``[CLS, patches]``
    get three kinds of prompt tokens (those of layer ``i - 1`` removed):

    - ``num_video_tokens`` learned *video* (global) tokens of layer ``i``,
      the same for every frame;
    - one *frame* (local) token, a learned projection of that frame's class
      token as it enters layer ``i`` (the previous layer's output);
    - one *summary* token: a learned query attends **across the frames**
      of the clip over their class tokens (multi-head attention), and the
      result goes to every frame of the clip, so frames exchange
      information in every layer (which the original's summary did not).

    Frames arrive clip by clip: ``num_frames`` consecutive frames form a
    clip (the recognizer never splits a clip across passes).

    Args:
        num_video_tokens (int): Video tokens per layer.
        num_heads (int): Heads of the summary attention.
        **kwargs: :class:`VideoCoOp` arguments (the text side).
    """
    learns_visual = True

    def __init__(self, num_video_tokens: int = 8, num_heads: int = 8,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if num_video_tokens < 1:
            raise ValueError(f'ViTA: num_video_tokens={num_video_tokens} '
                             'must be >= 1')
        self.num_video_tokens = num_video_tokens
        self.num_heads = num_heads

    def setup(self, towers: ClipTowers) -> None:
        super().setup(towers)
        depth, width = towers.vision_depth, towers.vision_width
        if width % self.num_heads:
            raise ValueError(f'ViTA: num_heads={self.num_heads} does not '
                             f'divide the vision width {width}')
        device = towers.visual_projection.weight.device
        self.video_tokens = nn.Parameter(
            torch.randn(depth, self.num_video_tokens, width, device=device) *
            0.02)
        self.frame_proj = nn.ModuleList(
            nn.Linear(width, width) for _ in range(depth)).to(device)
        self.summary_query = nn.Parameter(
            torch.randn(depth, width, device=device) * 0.02)
        self.summary_attn = nn.ModuleList(
            nn.MultiheadAttention(width, self.num_heads, batch_first=True)
            for _ in range(depth)).to(device)

    @property
    def extra_tokens(self) -> int:
        return self.num_video_tokens + 2

    def layer_prompts(self, i: int, cls: Tensor, num_frames: int) -> Tensor:
        """Prompt tokens ``[N, n + 2, C]`` of layer ``i`` from the class
        tokens ``cls [N, C]`` entering it."""
        N, C = cls.shape
        clips = cls.view(N // num_frames, num_frames, C)  # [B, T, C]
        query = self.summary_query[i].expand(clips.shape[0], 1, C)
        summary, _ = self.summary_attn[i](query, clips, clips)  # [B, 1, C]
        summary = summary.repeat_interleave(num_frames, dim=0)  # [N, 1, C]
        frame = self.frame_proj[i](cls).unsqueeze(1)  # [N, 1, C]
        video = self.video_tokens[i].expand(N, -1, -1)  # [N, n, C]
        return torch.cat([video, frame, summary], dim=1)

    def image_features(self, towers: ClipTowers, frames: Tensor,
                       num_frames: int) -> Tensor:
        if frames.shape[0] % num_frames:
            raise ValueError(f'ViTA: {frames.shape[0]} frames are not whole '
                             f'clips of {num_frames}')
        state = dict(tokens=None)

        def add_prompts(i: int, hidden: Tensor) -> Tensor:
            if state['tokens'] is None:
                state['tokens'] = hidden.shape[1]  # CLS + patches
            hidden = hidden[:, :state['tokens']]
            prompts = self.layer_prompts(i, hidden[:, 0], num_frames)
            return torch.cat([hidden, prompts], dim=1)

        return encode_images(towers, frames, layer_tokens=add_prompts)
