"""SEANet building blocks: activations and the causal dilated residual unit."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from codec.conv import StreamingConv1d
from codec.kernels import elu
from codec.streaming import StreamingModule


class Snake(nn.Module):
    """Snake activation `x + sin^2(alpha x) / alpha` with a learned `alpha` per channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        """`x`: `[B, C, T]` -> `[B, C, T]`."""
        return x + torch.sin(self.alpha * x).pow(2) / (self.alpha + 1e-9)


class ELU(nn.Module):
    """ELU (alpha 1) through `codec.kernels.elu`, the faster form on CPU."""

    def forward(self, x: Tensor) -> Tensor:
        """`x`: `[B, C, T]` -> `[B, C, T]`."""
        return elu(x)


ACTIVATIONS = ("elu", "snake")


def activation(name: str, channels: int) -> nn.Module:
    """The named activation for `channels` channels (`elu` or `snake`)."""
    if name == "elu":
        return ELU()
    if name == "snake":
        return Snake(channels)
    raise ValueError(f"unknown activation {name!r}: choose one of {', '.join(ACTIVATIONS)}")


class ResidualUnit(StreamingModule):
    """`x + conv1x1(act(conv_k,dilated(act(x))))`, causal, `[B, C, T] -> [B, C, T]`."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, act: str) -> None:
        super().__init__()
        hidden = channels // 2
        self.block = nn.Sequential(
            activation(act, channels),
            StreamingConv1d(channels, hidden, kernel_size, dilation=dilation),
            activation(act, hidden),
            StreamingConv1d(hidden, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)
