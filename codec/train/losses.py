"""The multi-resolution STFT loss: auraloss's, less the work it does for a term never weighed."""

from __future__ import annotations

import auraloss
import torch
from torch import Tensor


class MagnitudeSTFTLoss(auraloss.freq.STFTLoss):
    """auraloss's single-resolution STFT loss (spectral convergence + L1 of log magnitudes),
    whose STFT skips the phase spectrum that auraloss computes for its phase term even when that
    term's weight is 0, as here: the same loss and gradients, in about three quarters of the
    time (bench/train_throughput.py's "losses" share)."""

    def stft(self, x: Tensor) -> tuple[Tensor, None]:
        """`[B, T]` -> magnitudes `[B, fft_size // 2 + 1, frames]` (>= sqrt(eps)); no phase."""
        spectrum = torch.stft(
            x, self.fft_size, self.hop_size, self.win_length, self.window, return_complex=True
        )
        return torch.sqrt(torch.clamp(spectrum.real**2 + spectrum.imag**2, min=self.eps)), None


def multi_resolution_stft_loss() -> auraloss.freq.MultiResolutionSTFTLoss:
    """auraloss's multi-resolution STFT loss at its default resolutions (FFT 1024 / 2048 / 512,
    hops 120 / 240 / 50), each resolution a `MagnitudeSTFTLoss`; called with `[B, 1, T]` signals."""
    loss = auraloss.freq.MultiResolutionSTFTLoss()
    loss.stft_losses = torch.nn.ModuleList(
        MagnitudeSTFTLoss(f.fft_size, f.hop_size, f.win_length) for f in loss.stft_losses
    )
    return loss
