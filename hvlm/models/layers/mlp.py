"""The feed-forward half of a transformer block."""
import torch.nn as nn
from torch import Tensor


class Mlp(nn.Module):
    """``Linear -> GELU -> Dropout -> Linear -> Dropout``.

    Args:
        embed_dims (int): Input and output channels.
        hidden_dims (int): Channels of the hidden layer.
        drop (float): Dropout after each linear.
    """

    def __init__(self, embed_dims: int, hidden_dims: int,
                 drop: float = 0.) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden_dims)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dims, embed_dims)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))
