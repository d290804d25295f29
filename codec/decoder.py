"""Causal SEANet decoder: latent frames `[B, D, frames]` -> audio `[B, 1, frames * hop]`."""

from __future__ import annotations

import math

from torch import Tensor, nn

from codec.blocks import ResidualUnit, activation
from codec.config import ModelConfig
from codec.conv import StreamingConv1d, StreamingConvTranspose1d
from codec.streaming import StreamingModule


class SEANetDecoder(StreamingModule):
    """The encoder mirrored: a conv from the latent, then per stride (in reverse) a transposed
    conv and residual units; channels halve at each up-sampling; a final conv to one channel."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        ch = cfg.channels * 2 ** len(cfg.strides)
        layers: list[nn.Module] = [StreamingConv1d(cfg.latent_dim, ch, cfg.kernel_size)]
        for stride in reversed(cfg.strides):
            layers += [
                activation(cfg.activation, ch),
                StreamingConvTranspose1d(ch, ch // 2, 2 * stride, stride),
            ]
            ch //= 2
            layers += [
                ResidualUnit(ch, cfg.residual_kernel_size, d, cfg.activation) for d in cfg.dilations
            ]
        layers += [activation(cfg.activation, ch), StreamingConv1d(ch, 1, cfg.kernel_size)]
        self.layers = nn.Sequential(*layers)
        self.hop_length = math.prod(cfg.strides)
        self.delay = 0  # output samples align with input samples

    def forward(self, latent: Tensor) -> Tensor:
        """`latent`: `[B, D, frames]` -> `[B, 1, frames * hop]`."""
        return self.layers(latent)
