"""Frame-rate encoder: audio `[B, 1, T]` -> causal STFT -> ConvNeXt blocks -> `[B, D, T // hop]`."""

from __future__ import annotations

from torch import Tensor

from codec.config import ModelConfig
from codec.convnext import ConvNeXtStack
from codec.stft import CausalSTFT
from codec.streaming import StreamingModule


class FrameEncoder(StreamingModule):
    """All of its work is at the frame rate: a fixed causal STFT (`frame.analysis_window`
    samples of the past per frame) described per bin by `frame.features`, then
    `frame.encoder_blocks` ConvNeXt blocks."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        f = cfg.frame
        self.stft = CausalSTFT(
            f.analysis_window, f.hop, f.compression, tuple(f.features), f.log_floor
        )
        self.net = ConvNeXtStack(
            self.stft.channels, f.width, cfg.latent_dim, f.encoder_blocks, f.kernel_size,
            f.expansion, f.final_norm,
        )  # fmt: skip
        self.hop_length = f.hop

    def forward(self, wav: Tensor) -> Tensor:
        """`wav`: `[B, 1, T]` -> `[B, D, T // hop]` (streaming: frames completed by this chunk)."""
        return self.net(self.stft(wav))
