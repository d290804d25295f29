"""Audio quality metrics of a reconstruction against its reference (1-D float arrays)."""

from __future__ import annotations

import numpy as np


def pesq_wb(ref: np.ndarray, hyp: np.ndarray, sample_rate: int = 16000) -> float:
    """Wide-band PESQ (ITU-T P.862.2), MOS-LQO from about 1.0 to 4.64; needs 16 kHz speech."""
    from pesq import pesq

    if sample_rate != 16000:
        raise ValueError(f"wide-band PESQ needs 16 kHz audio, got {sample_rate} Hz")
    return float(pesq(16000, ref, hyp, "wb"))


def stoi(ref: np.ndarray, hyp: np.ndarray, sample_rate: int, extended: bool = False) -> float:
    """Short-time objective intelligibility (0-1); `extended` gives ESTOI."""
    from pystoi import stoi as pystoi

    return float(pystoi(ref, hyp, sample_rate, extended=extended))


def si_sdr(ref: np.ndarray, hyp: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB."""
    ref = ref - ref.mean()
    hyp = hyp - hyp.mean()
    target = (hyp @ ref) / max(ref @ ref, 1e-12) * ref
    noise = hyp - target
    return float(10 * np.log10(max(target @ target, 1e-12) / max(noise @ noise, 1e-12)))
