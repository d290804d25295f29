"""Frame-rate decoder: `[B, D, frames]` -> ConvNeXt blocks -> Fourier head -> audio `[B, 1, T]`."""

from __future__ import annotations

from torch import Tensor

from codec.config import ModelConfig
from codec.convnext import ConvNeXtStack
from codec.stft import OverlapAddISTFT
from codec.streaming import StreamingModule


class FrameDecoder(StreamingModule):
    """`frame.decoder_blocks` ConvNeXt blocks, then a Fourier head: a log magnitude and a phase
    per bin of a `frame.synthesis_window`-sample frame, overlap-added (`OverlapAddISTFT`).

    The output runs `delay = synthesis_window - hop` samples behind the input: a frame's window
    ends with the last sample the encoder saw, and its first `delay` samples are cross-faded
    with the frame before."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        f = cfg.frame
        if not f.hop < f.synthesis_window <= 2 * f.hop:
            raise ValueError(
                f"model.frame.synthesis_window must be in ({f.hop}, {2 * f.hop}] (hop .. 2 hop), "
                f"got {f.synthesis_window}"
            )
        self.istft = OverlapAddISTFT(
            f.synthesis_window, f.hop, f.head, f.compression, f.accumulate_phase, f.phase_gradient
        )
        self.net = ConvNeXtStack(
            cfg.latent_dim, f.width, 2 * self.istft.bins, f.decoder_blocks, f.kernel_size,
            f.expansion, f.final_norm,
        )  # fmt: skip
        self.hop_length = f.hop
        self.delay = f.synthesis_window - f.hop

    def forward(self, latent: Tensor) -> Tensor:
        """`latent`: `[B, D, frames]` -> `[B, 1, frames * hop]`, `delay` samples late."""
        return self.istft(self.net(latent))
