"""Log-mel spectrograms at several FFT sizes, for the training loss and the mel-distance metric."""

from __future__ import annotations

import librosa
import torch
from torch import Tensor, nn


class MultiScaleMelDistance(nn.Module):
    """Mean L1 distance between log10 mel spectrograms of `[B, 1, T]` signals, averaged over FFT
    sizes (hop = n_fft / 4, `n_fft / 8` mel bands up to 128). 0 for identical signals."""

    def __init__(self, sample_rate: int, n_ffts: tuple[int, ...] = (512, 1024, 2048)) -> None:
        super().__init__()
        self.n_ffts = n_ffts
        for n_fft in n_ffts:
            basis = librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=min(128, n_fft // 8))
            self.register_buffer(f"mel_{n_fft}", torch.from_numpy(basis).float(), persistent=False)
            self.register_buffer(f"window_{n_fft}", torch.hann_window(n_fft), persistent=False)

    def log_mel(self, x: Tensor, n_fft: int) -> Tensor:
        """`[B, 1, T]` -> `[B, mels, frames]`."""
        window = getattr(self, f"window_{n_fft}")
        spec = torch.stft(
            x.squeeze(1).float(), n_fft, n_fft // 4, window=window, return_complex=True
        )
        return torch.log10(getattr(self, f"mel_{n_fft}") @ spec.abs().pow(2) + 1e-5)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        distances = [(self.log_mel(x, n) - self.log_mel(y, n)).abs().mean() for n in self.n_ffts]
        return torch.stack(distances).mean()
