"""Does a codec render a voice's harmonics, or the frame rate's? A steady-pitch probe.

Usage: python bench/harmonics.py MODEL... [--f0 100,130,230] [--stages N]

Each model (a zoo name or checkpoint) codes a 2 s band-limited pulse train (harmonics of F0 up
to 4 kHz, amplitudes 1/h, at -23 dBFS) offline; the last 1.5 s of its output are analysed. The
table gives, per F0, the share of the output's energy below 4 kHz within 8 Hz of a harmonic of
F0, and the share within 8 Hz of a multiple of 50 Hz that is not one (a 50 frames/s decoder
that cannot follow the pitch repeats itself every frame: lines at multiples of 50 Hz). A F0
that is a multiple of 50 Hz cannot tell the two apart, so the default probes include two that
are not.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from codec.eval.report import markdown_table
from codec.zoo import load_model

RATE = 16000
BAND_HZ = 4000
NEAR_HZ = 8


def pulse_train(f0: float, seconds: float = 2.0) -> np.ndarray:
    """Harmonics of `f0` up to `BAND_HZ` with amplitudes 1/h, scaled to -23 dBFS RMS: `[T]`."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = sum(np.cos(2 * np.pi * h * f0 * t) / h for h in range(1, int(BAND_HZ / f0) + 1))
    return (x / np.sqrt(np.mean(x**2)) * 10 ** (-23 / 20)).astype(np.float32)


def energy_shares(audio: np.ndarray, f0: float) -> tuple[float, float]:
    """Shares of `audio`'s energy below `BAND_HZ` near harmonics of `f0`, and near multiples
    of 50 Hz that are not harmonics of `f0`."""
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / RATE)
    band = freqs < BAND_HZ

    def near(grid: np.ndarray) -> np.ndarray:
        return np.abs(freqs[:, None] - grid[None]).min(axis=1) < NEAR_HZ

    harmonics = band & near(f0 * np.arange(1, BAND_HZ // f0 + 1))
    frame_lines = band & near(50.0 * np.arange(1, BAND_HZ // 50 + 1)) & ~harmonics
    total = spectrum[band].sum()
    return spectrum[harmonics].sum() / total, spectrum[frame_lines].sum() / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="zoo names or checkpoints")
    parser.add_argument("--f0", default="100,130,230", help="comma-separated pitches in Hz")
    parser.add_argument("--stages", type=int, help="stages to decode (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for name in args.models:
        model = load_model(name).eval()
        for f0 in map(float, args.f0.split(",")):
            x = pulse_train(f0)
            with torch.no_grad():
                codes = model.encode(torch.from_numpy(x).view(1, 1, -1), args.stages)
                y = model.decode(codes).view(-1).numpy()[: len(x)]
            harmonic, frame = energy_shares(y[RATE // 2 :], f0)
            rows.append([name, f"{f0:g}", f"{harmonic:.2f}", f"{frame:.2f}"])
    print(markdown_table(["model", "F0 Hz", "on harmonics", "on 50 Hz lines"], rows))


if __name__ == "__main__":
    main()
