"""What the pretrained image and text encoders hand to the models above
them."""
from dataclasses import dataclass

from torch import Tensor


@dataclass
class FrameEncoding:
    """Every frame of a batch of clips, encoded on its own by an image
    encoder.

    Attributes:
        patch_tokens (Tensor): ``[B, T, h, w, C]`` the last layer's token of
            every patch, on the frame's patch grid (no class token).
        embeds (Tensor): ``[B, T, D]`` each frame's pooled embedding in the
            image-text space (CLIP: class token -> post-norm -> projection;
            SigLIP: attention-pooling head).
    """
    patch_tokens: Tensor
    embeds: Tensor


@dataclass
class TextEncoding:
    """A batch of tokenised texts encoded by a text encoder.

    Attributes:
        token_states (Tensor): ``[B, L, C]`` the last layer's state of every
            token (padding included: mask it with ``attention_mask``).
        embeds (Tensor): ``[B, D]`` each text's pooled embedding in the
            image-text space.
        attention_mask (Tensor): ``[B, L]`` 1 for real tokens, 0 for padding.
    """
    token_states: Tensor
    embeds: Tensor
    attention_mask: Tensor
