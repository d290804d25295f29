"""A causal ConvNeXt block at the frame rate: depthwise conv over past frames, then an MLP."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from codec.conv import StreamingConv1d
from codec.streaming import StreamingModule


class ConvNeXtBlock(StreamingModule):
    """`x + scale * MLP(LayerNorm(depthwise_conv(x)))`, `[B, C, frames] -> [B, C, frames]`.

    The depthwise conv sees the current and `kernel_size - 1` past frames (their features wait
    in its streaming state); the rest is per frame. The MLP widens `expansion` times (GELU)."""

    def __init__(self, channels: int, kernel_size: int, expansion: int, layer_scale: float) -> None:
        super().__init__()
        self.mix = StreamingConv1d(channels, channels, kernel_size, norm=False, groups=channels)
        self.norm = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(
            nn.Linear(channels, expansion * channels),
            nn.GELU(),
            nn.Linear(expansion * channels, channels),
        )
        self.scale = nn.Parameter(torch.full((channels,), layer_scale))

    def forward(self, x: Tensor) -> Tensor:
        y = self.mlp(self.norm(self.mix(x).transpose(1, 2))) * self.scale
        return x + y.transpose(1, 2)


class ConvNeXtStack(StreamingModule):
    """A linear map `in -> width`, `blocks` ConvNeXt blocks, a LayerNorm (with `final_norm`)
    and a linear map `width -> out`: `[B, in, frames] -> [B, out, frames]`.

    The final LayerNorm costs the frame codec learning speed (docs/models.md: at equal steps
    of the reference loop, 14% more mel distance at 12 stages), so v7 drops it."""

    def __init__(
        self, in_dim: int, width: int, out_dim: int, blocks: int, kernel_size: int, expansion: int,
        final_norm: bool = True,
    ) -> None:  # fmt: skip
        super().__init__()
        self.embed = nn.Linear(in_dim, width)
        self.blocks = nn.ModuleList(
            ConvNeXtBlock(width, kernel_size, expansion, 1.0 / blocks) for _ in range(blocks)
        )
        self.norm = nn.LayerNorm(width) if final_norm else nn.Identity()
        self.project = nn.Linear(width, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        x = self.embed(x.transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            x = block(x)
        return self.project(self.norm(x.transpose(1, 2))).transpose(1, 2)
