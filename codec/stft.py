"""Causal short-time Fourier analysis and overlap-add synthesis as streaming convolutions.

Both transforms are fixed (non-trainable) convolutions, so they stream through the state of
`StreamingConv1d` (the analysis window's past samples) and `StreamingConvTranspose1d` (the
synthesis overlap carried to the next frame), and export to ONNX with that state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from codec.conv import StreamingConv1d, StreamingConvTranspose1d
from codec.streaming import StreamingModule


def tapered_window(length: int, overlap: int) -> Tensor:
    """A window `[length]` that rises over `overlap` samples (sin^2), stays at 1 and falls over
    the last `overlap` samples; copies of it `length - overlap` apart add up to 1."""
    if not 0 < overlap <= length // 2:
        raise ValueError(f"overlap must be in 1..{length // 2}, got {overlap}")
    rise = torch.sin(0.5 * math.pi * (torch.arange(overlap) + 0.5) / overlap).pow(2)
    flat = torch.ones(length - 2 * overlap)
    return torch.cat([rise, flat, rise.flip(0)])


def _real_dft(n_fft: int) -> tuple[Tensor, Tensor]:
    """Cosine and sine rows `[n_fft // 2 + 1, n_fft]` of the orthonormal real DFT."""
    bins = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    angle = 2 * math.pi * bins * torch.arange(n_fft, dtype=torch.float64) / n_fft
    scale = 1 / math.sqrt(n_fft)
    return torch.cos(angle) * scale, -torch.sin(angle) * scale


def centre_advance(window: int, hop: int) -> Tensor:
    """Each bin's phase advance over a hop for a sinusoid at the bin's centre frequency, in
    [0, 2 pi): `[window // 2 + 1]` float64 (a phase vocoder's reference)."""
    bins = torch.arange(window // 2 + 1, dtype=torch.float64)
    return (2 * math.pi * hop / window * bins) % (2 * math.pi)


def power_gain(re: Tensor, im: Tensor, power: float) -> Tensor:
    """`|X|^(power - 1)` of bins `X = re + i im`: multiplied into `X`, it raises the magnitude
    to `power` and keeps the phase (the analysis compresses with it, the complex head
    decompresses with `1 / power`)."""
    return (re.square() + im.square() + 1e-8).pow((power - 1) / 2)


def _fixed(conv: nn.Conv1d | nn.ConvTranspose1d, weight: Tensor) -> None:
    """Set the weight of `conv` to `weight` and its bias to 0, both frozen."""
    conv.weight = nn.Parameter(weight.float(), requires_grad=False)
    conv.bias = nn.Parameter(torch.zeros_like(conv.bias), requires_grad=False)


FEATURES = {"compressed": 2, "log_magnitude": 1, "phase": 2, "phase_advance": 2}  # per bin


class CausalSTFT(StreamingModule):
    """Audio `[B, 1, T]` -> features of each bin of a causal spectrum `[B, channels, T // hop]`.

    Frame `j` is the Hann-windowed orthonormal DFT of samples `[(j + 1) * hop - window,
    (j + 1) * hop)`: it waits for no sample after the frame. Each bin `X` is described by the
    `features` named, in their order, each as a block of `bins` channels per part:
    `compressed` is `X |X|^(power - 1)` (real parts, then imaginary parts: the phase kept, the
    magnitude compressed); `log_magnitude` is `log max(|X|, floor)`; `phase` is the unit
    vector `X / max(|X|, floor)` (cos, then sin); `phase_advance` is the unit vector of the
    bin's phase turn since the frame a hop before, less a bin-centred sinusoid's (a phase
    vocoder's deviation: steady for a steady tone at any frequency; the kernel then spans
    `window + hop` samples). The log magnitude hands the encoder the
    spectral envelope directly, where from compressed parts it must first undo the phase
    (docs/models.md: the reference loop)."""

    def __init__(
        self, window: int, hop: int, power: float = 0.3,
        features: tuple[str, ...] = ("compressed",), floor: float = 4e-7,
    ) -> None:  # fmt: skip
        super().__init__()
        unknown = [name for name in features if name not in FEATURES]
        if unknown or not features or len(set(features)) != len(features):
            raise ValueError(
                f"model.frame.features must name each of {', '.join(FEATURES)} at most once "
                f"(at least one), got {list(features)}"
            )
        if floor <= 0:
            raise ValueError(f"model.frame.log_floor must be positive, got {floor}")
        self.bins, self.power, self.features, self.floor = window // 2 + 1, power, features, floor
        self.channels = self.bins * sum(FEATURES[name] for name in features)
        cos, sin = _real_dft(window)
        hann = torch.hann_window(window, periodic=True, dtype=torch.float64)
        rows = torch.cat([cos, sin])[:, None] * hann  # [2 bins, 1, window]
        if "phase_advance" in features:  # a kernel of window + hop: this frame, the one before,
            # the latter turned on by a bin-centred sinusoid's advance over the hop
            turn = centre_advance(window, hop)
            c, s = torch.cos(turn)[:, None, None], torch.sin(turn)[:, None, None]
            re, im = rows[: self.bins], rows[self.bins :]
            before = torch.cat([c * re - s * im, s * re + c * im])
            pad = nn.functional.pad
            rows = torch.cat([pad(rows, (hop, 0)), pad(before, (0, hop))])
        self.frames = StreamingConv1d(1, rows.shape[0], rows.shape[-1], hop, norm=False)
        _fixed(self.frames.conv, rows)

    def _magnitude(self, re: Tensor, im: Tensor) -> Tensor:
        return (re.square() + im.square()).sqrt().clamp_min(self.floor)

    def forward(self, wav: Tensor) -> Tensor:
        """`wav`: `[B, 1, T]` -> `[B, channels, frames]`."""
        spec = self.frames(wav)
        re, im = spec[:, : self.bins], spec[:, self.bins : 2 * self.bins]
        magnitude = self._magnitude(re, im)
        parts = []
        for name in self.features:
            if name == "compressed":
                gain = power_gain(re, im, self.power)
                parts += [re * gain, im * gain]
            elif name == "log_magnitude":
                parts.append(magnitude.log())
            elif name == "phase":
                parts += [re / magnitude, im / magnitude]
            else:  # this frame's unit vector times the conjugate of the turned one before
                before_re, before_im = spec[:, 2 * self.bins : 3 * self.bins], spec[:, -self.bins :]
                both = magnitude * self._magnitude(before_re, before_im)
                parts += [(re * before_re + im * before_im) / both]
                parts += [(im * before_re - re * before_im) / both]
        return torch.cat(parts, dim=1)


@dataclass
class PhaseState:
    """Each bin's phase at the last frame, in [0, 2 pi): `[B, bins, 1]` float64 (so that chunks
    carry on exactly the sum an offline pass computes)."""

    phase: Tensor


HEADS = ("polar", "complex")


PHASE_GRADIENTS = ("sum", "frame")


class OverlapAddISTFT(StreamingModule[PhaseState]):
    """A spectrum per frame `[B, 2 * bins, frames]` -> audio `[B, 1, frames * hop]`.

    The `polar` head gives each bin a log magnitude and a phase: `exp(log_mag) * e^(i phase)`.
    The `complex` head gives a real and an imaginary part `Y` of the spectrum compressed as the
    analysis compresses it (`CausalSTFT`'s `power`): `X = Y |Y|^(1 / power - 1)`, so a bin's
    phase is carried linearly, not through an angle. Each frame is the inverse real DFT of `X`
    over `window` samples, with phases counted from the frame's centre (all phases 0 put a
    pulse at the centre, not at the edges where the taper would erase it), tapered over
    `window - hop` samples at each end (`tapered_window`) and overlap-added: frame `j` writes
    samples `[j * hop, j * hop + window)`, and the `window - hop` samples that reach into the
    next frame are carried in the streaming state.

    With `accumulate` (polar head), the phase inputs are each bin's phase *advance* over a hop
    beyond its centre frequency's (a phase vocoder's deviation): phases are summed frame after
    frame from the last frame's (kept in the streaming state), so a steady sinusoid at any
    frequency is a steady input. Without it, a steady input can only give frame-periodic audio
    (harmonics of the frame rate). `phase_gradient` `frame` holds the sum of the earlier frames'
    advances fixed in the gradient, so each advance learns how its frame joins the one before;
    `sum` lets it learn from every later frame too."""

    MAX_MAGNITUDE = 1e2  # as Vocos: bounds the output early in training

    def __init__(
        self, window: int, hop: int, head: str = "polar", power: float = 0.3,
        accumulate: bool = False, phase_gradient: str = "sum",
    ) -> None:  # fmt: skip
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"unknown Fourier head {head!r}: choose one of {', '.join(HEADS)}")
        if accumulate and head != "polar":
            raise ValueError("accumulated phases need the polar head (model.frame.head: polar)")
        if phase_gradient not in PHASE_GRADIENTS:
            raise ValueError(
                f"unknown model.frame.phase_gradient {phase_gradient!r}: choose one of "
                f"{', '.join(PHASE_GRADIENTS)}"
            )
        self.bins, self.head, self.power, self.accumulate = window // 2 + 1, head, power, accumulate
        self.phase_gradient = phase_gradient
        self.overlap = StreamingConvTranspose1d(2 * self.bins, 1, window, hop, norm=False)
        cos, sin = _real_dft(window)
        # the inverse of the orthonormal real DFT: bins other than DC and Nyquist count twice
        twice = torch.full((self.bins, 1), 2.0, dtype=torch.float64)
        twice[0] = 1.0
        if window % 2 == 0:
            twice[-1] = 1.0
        centred = torch.cat([cos * twice, sin * twice]).roll(window // 2, dims=1)
        basis = centred * tapered_window(window, window - hop)
        _fixed(self.overlap.convtr, basis[:, None])
        advance = centre_advance(window, hop).view(1, -1, 1)
        self.register_buffer("advance", advance, persistent=False)

    def init_state(self, batch_size: int) -> PhaseState | None:
        if not self.accumulate:
            return None
        return PhaseState(self.advance.new_zeros(batch_size, self.bins, 1))

    def _phases(self, deviation: Tensor) -> Tensor:
        """Phase advances `[B, bins, frames]` -> phases, summed on from the state's, in float64
        so that long offline sums and wrapped streaming ones agree."""
        start = 0.0 if self.state is None else self.state.phase
        steps = deviation.double() + self.advance
        summed = torch.cumsum(steps, dim=-1)
        if self.phase_gradient == "frame":  # the same sum; each advance learns from its frame
            summed = summed.detach() + (steps - steps.detach())
        phase = torch.remainder(start + summed, 2 * math.pi)
        if self.state is not None and phase.shape[-1]:
            self.state.phase = phase[..., -1:]
        return phase.to(deviation.dtype)

    def forward(self, spec: Tensor) -> Tensor:
        """`spec`: `[B, 2 * bins, frames]` (log magnitudes then phases, or compressed real then
        imaginary parts) -> `[B, 1, frames * hop]`."""
        first, second = spec[:, : self.bins], spec[:, self.bins :]
        if self.head == "complex":
            # decompressed: the analysis's gain with the inverse power, |X| bounded
            bound = self.MAX_MAGNITUDE * power_gain(first, second, 0.0)  # MAX / |Y|
            gain = power_gain(first, second, 1 / self.power).clamp(max=bound)
            return self.overlap(torch.cat([first * gain, second * gain], dim=1))
        phase = self._phases(second) if self.accumulate else second
        mag = first.clamp(max=math.log(self.MAX_MAGNITUDE)).exp()
        return self.overlap(torch.cat([mag * torch.cos(phase), mag * torch.sin(phase)], dim=1))
