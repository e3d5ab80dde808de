"""An attention defined outside hvlm, registered with one decorator."""
import torch
import torch.nn as nn

from hvlm.registry import ATTENTIONS


@ATTENTIONS.register_module()
class TheirAttention(nn.Module):
    """Multi-head attention written the plain way (no SDPA), counting calls
    so tests can see that the encoder really used it."""

    calls = 0

    def __init__(self, embed_dims: int, num_heads: int, **kwargs) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(embed_dims, embed_dims * 3)
        self.proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, x, *, shape=None, size=None, memory=None):
        TheirAttention.calls += 1
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # [B, heads, N, d] each
        attn = (q @ k.transpose(-2, -1)) * q.shape[-1]**-0.5
        if size is not None:
            attn = attn + size.log()[:, None, None, :]
        out = attn.softmax(-1) @ v  # [B, heads, N, d]
        return self.proj(out.transpose(1, 2).reshape(B, N, C))
