"""Causal SEANet encoder: audio `[B, 1, T]` -> latent frames `[B, D, T // hop]`."""

from __future__ import annotations

import math

from torch import Tensor, nn

from codec.blocks import ResidualUnit, activation
from codec.config import ModelConfig
from codec.conv import StreamingConv1d
from codec.streaming import StreamingModule


class SEANetEncoder(StreamingModule):
    """Conv, then per stride: residual units (dilations 1, 3, 9) and a strided conv; then a conv
    to the latent. Channels double at each down-sampling."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        ch = cfg.channels
        layers: list[nn.Module] = [StreamingConv1d(1, ch, cfg.kernel_size)]
        for stride in cfg.strides:
            layers += [
                ResidualUnit(ch, cfg.residual_kernel_size, d, cfg.activation) for d in cfg.dilations
            ]
            layers += [
                activation(cfg.activation, ch),
                StreamingConv1d(ch, 2 * ch, 2 * stride, stride),
            ]
            ch *= 2
        layers += [
            activation(cfg.activation, ch),
            StreamingConv1d(ch, cfg.latent_dim, cfg.residual_kernel_size),
        ]
        self.layers = nn.Sequential(*layers)
        self.hop_length = math.prod(cfg.strides)

    def forward(self, wav: Tensor) -> Tensor:
        """`wav`: `[B, 1, T]` -> `[B, D, T // hop]` (streaming: frames completed by this chunk)."""
        return self.layers(wav)
