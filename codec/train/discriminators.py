"""Discriminators for optional adversarial training: multi-period (waveform) and multi-scale
STFT (complex spectrogram), each returning logits and intermediate features."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import weight_norm

Output = tuple[Tensor, list[Tensor]]  # logits, features


def _stack(channels: list[int], kernel: tuple[int, int], stride: tuple[int, int]) -> nn.ModuleList:
    padding = (kernel[0] // 2, kernel[1] // 2)
    return nn.ModuleList(
        weight_norm(nn.Conv2d(c_in, c_out, kernel, stride, padding))
        for c_in, c_out in zip(channels, channels[1:], strict=False)
    )


class PeriodDiscriminator(nn.Module):
    """Looks at samples `period` apart: `[B, 1, T]` folded to `[B, 1, T / period, period]`."""

    def __init__(self, period: int, channels: tuple[int, ...] = (16, 32, 64, 128)) -> None:
        super().__init__()
        self.period = period
        self.convs = _stack([1, *channels], (5, 1), (3, 1))
        self.out = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, x: Tensor) -> Output:
        x = F.pad(x, (0, -x.shape[-1] % self.period), mode="reflect")
        x = x.view(x.shape[0], 1, -1, self.period)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            features.append(x)
        return self.out(x), features


class STFTDiscriminator(nn.Module):
    """Looks at the real and imaginary parts of one STFT resolution. The STFT runs in fp32
    under autocast too (half-precision cuFFT takes only power-of-two sizes, and loses the
    quiet bins); the convolutions follow autocast."""

    def __init__(self, n_fft: int, channels: int = 32) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.convs = _stack([2, channels, channels, channels, channels], (3, 9), (1, 2))
        self.out = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, x: Tensor) -> Output:
        with torch.autocast(x.device.type, enabled=False):
            spec = torch.stft(
                x.squeeze(1).float(), self.n_fft, self.n_fft // 4, window=self.window,
                return_complex=True,
            )  # fmt: skip
        x = torch.stack([spec.real, spec.imag], dim=1).transpose(2, 3)  # [B, 2, frames, bins]
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.1)
            features.append(x)
        return self.out(x), features


class Discriminators(nn.Module):
    """All discriminators; `forward` returns one (logits, features) per discriminator."""

    def __init__(
        self,
        periods: Sequence[int] = (2, 3, 5, 7, 11),
        n_ffts: Sequence[int] = (1024, 512, 256),
        stft_channels: int = 32,
    ) -> None:
        super().__init__()
        self.members = nn.ModuleList(
            [PeriodDiscriminator(p) for p in periods]
            + [STFTDiscriminator(n, stft_channels) for n in n_ffts]
        )

    def forward(self, x: Tensor) -> list[Output]:
        return [member(x) for member in self.members]


def split_batch(outputs: list[Output], n: int) -> tuple[list[Output], list[Output]]:
    """Outputs for a batch `[real; fake]` -> (outputs of the first `n` items, of the rest)."""
    real = [(logits[:n], [f[:n] for f in feats]) for logits, feats in outputs]
    fake = [(logits[n:], [f[n:] for f in feats]) for logits, feats in outputs]
    return real, fake


def discriminator_loss(real: list[Output], fake: list[Output]) -> Tensor:
    """Hinge loss: real logits above +1, fake below -1."""
    losses = [
        F.relu(1 - r.float()).mean() + F.relu(1 + f.float()).mean()
        for (r, _), (f, _) in zip(real, fake, strict=True)
    ]
    return torch.stack(losses).mean()


def generator_loss(fake: list[Output]) -> Tensor:
    """Hinge loss for the generator: fake logits above +1."""
    return torch.stack([F.relu(1 - f.float()).mean() for f, _ in fake]).mean()


def feature_matching_loss(real: list[Output], fake: list[Output]) -> Tensor:
    """L1 between discriminator features of real and reconstructed audio, relative to the real
    (in fp32 whatever precision the features come in)."""
    losses = [
        (fr.detach().float() - ff.float()).abs().mean() / (fr.detach().float().abs().mean() + 1e-5)
        for (_, feats_r), (_, feats_f) in zip(real, fake, strict=True)
        for fr, ff in zip(feats_r, feats_f, strict=True)
    ]
    return torch.stack(losses).mean()
