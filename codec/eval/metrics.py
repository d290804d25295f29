"""Quality of a reconstruction against its reference: PESQ, STOI/ESTOI, SI-SDR, mel distance,
pitch, and (`codec.eval.perceptual`) predicted MOS, ViSQOL, speaker similarity and WER.

Signals are 1-D float arrays at one sample rate. `score` first finds and removes a constant
delay, then computes the metrics asked for; a metric that cannot be computed (PESQ finds no
speech, say) is reported as missing with its reason instead of stopping the run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import soxr

# a metric (what --metrics names) -> the values it reports
METRIC_VALUES: dict[str, tuple[str, ...]] = {
    "pesq_wb": ("pesq_wb",),
    "pesq_nb": ("pesq_nb",),
    "stoi": ("stoi",),
    "estoi": ("estoi",),
    "si_sdr": ("si_sdr",),
    "mel_distance": ("mel_distance",),
    "pitch": ("f0_rmse_cents", "voicing_error"),
    "dnsmos": ("dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808"),
    "plcmos": ("plcmos",),
    "visqol": ("visqol",),
    "speaker_similarity": ("speaker_similarity",),
    "wer": ("wer", "wer_ref"),
}
DEFAULT_METRICS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "mel_distance", "pitch")
BENCH_METRICS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr")  # codec bench's default
METRICS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "mel_distance")  # signal measures
MAX_DELAY_SECONDS = 0.25


def select_metrics(spec: str) -> tuple[str, ...]:
    """`--metrics`: `default`, `all`, or a comma list of metric names (may include `default`)."""
    chosen: list[str] = []
    for name in (part.strip() for part in spec.split(",") if part.strip()):
        names = {"default": DEFAULT_METRICS, "all": tuple(METRIC_VALUES)}.get(name, (name,))
        for metric in names:
            if metric not in METRIC_VALUES:
                known = ", ".join(["default", "all", *METRIC_VALUES])
                raise ValueError(f"unknown metric {metric!r}: choose from {known}")
            if metric not in chosen:
                chosen.append(metric)
    if not chosen:
        raise ValueError("--metrics names no metric")
    return tuple(chosen)


def value_names(metrics: tuple[str, ...]) -> list[str]:
    """The values that `metrics` report, in order: the columns of a report."""
    return [value for metric in metrics for value in METRIC_VALUES[metric]]


def check_available(metrics: tuple[str, ...]) -> None:
    """MetricUnavailable, naming what to install, if a metric's package is missing."""
    from codec.eval.perceptual import MODULES, _require

    for metric in metrics:
        if metric in MODULES:
            _require(metric, MODULES[metric])


def _at(x: np.ndarray, rate: int, target: int) -> np.ndarray:
    return x if rate == target else soxr.resample(x, rate, target, quality="HQ")


def pesq_wb(ref: np.ndarray, hyp: np.ndarray, sample_rate: int = 16000) -> float:
    """Wide-band PESQ (ITU-T P.862.2), MOS-LQO from about 1.0 to 4.64; needs 16 kHz speech."""
    from pesq import pesq

    if sample_rate != 16000:
        raise ValueError(f"wide-band PESQ needs 16 kHz audio, got {sample_rate} Hz")
    return float(pesq(16000, ref, hyp, "wb"))


def pesq_nb(ref: np.ndarray, hyp: np.ndarray, sample_rate: int) -> float:
    """Narrow-band PESQ (P.862 with the P.862.1 mapping) at 8 kHz, resampling as needed."""
    from pesq import pesq

    return float(pesq(8000, _at(ref, sample_rate, 8000), _at(hyp, sample_rate, 8000), "nb"))


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


@lru_cache(maxsize=4)
def _mel_distance(sample_rate: int):
    from codec.spectral import MultiScaleMelDistance

    return MultiScaleMelDistance(sample_rate)


def mel_distance(ref: np.ndarray, hyp: np.ndarray, sample_rate: int) -> float:
    """Multi-scale log-mel L1 distance (0 when equal); the training loss, used as a metric."""
    import torch

    ref_t, hyp_t = (
        torch.from_numpy(np.asarray(x, dtype=np.float32)).view(1, 1, -1) for x in (ref, hyp)
    )
    with torch.no_grad():
        return float(_mel_distance(sample_rate)(ref_t, hyp_t))


def _cross_correlation(ref: np.ndarray, hyp: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """sum_t hyp[t + lag] * ref[t] for each lag in `lags` (via FFT)."""
    n = len(ref) + len(hyp)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(hyp, size) * np.conj(np.fft.rfft(ref, size)), size)
    return corr[lags % size]


def _log_envelope(x: np.ndarray, hop: int) -> np.ndarray:
    """Log energy of frames of 2 * `hop` samples every `hop`, floored 40 dB under the mean."""
    frames = len(x) // hop
    energy = np.add.reduceat(np.asarray(x[: frames * hop]) ** 2, np.arange(0, frames * hop, hop))
    energy = energy + np.concatenate([energy[1:], [0.0]])
    envelope = np.log(energy + 1e-4 * energy.mean() + 1e-12)
    return envelope - envelope.mean()


def estimate_delay(ref: np.ndarray, hyp: np.ndarray, max_delay: int, hop: int = 16) -> int:
    """Samples by which `hyp` lags `ref` (negative: leads), within +-`max_delay`.

    Coarse: the peak of the cross-correlation of log-energy envelopes (every `hop` samples),
    which a codec that does not keep the waveform's phase cannot fool; fine: the waveform
    cross-correlation peak within one `hop` of it."""
    coarse, window = 0, max_delay  # too short for envelopes: search the waveform only
    if min(len(ref), len(hyp)) >= 4 * hop:
        steps = max_delay // hop
        coarse_lags = np.arange(-steps, steps + 1)
        corr = _cross_correlation(_log_envelope(ref, hop), _log_envelope(hyp, hop), coarse_lags)
        coarse, window = hop * int(coarse_lags[np.argmax(corr)]), hop
    lags = np.arange(max(-max_delay, coarse - window), min(max_delay, coarse + window) + 1)
    return int(lags[np.argmax(_cross_correlation(ref, hyp, lags))])


def align(ref: np.ndarray, hyp: np.ndarray, delay: int) -> tuple[np.ndarray, np.ndarray]:
    """Remove `delay` (hyp lags ref by that many samples) and cut both to their common length."""
    if delay > 0:
        hyp = hyp[delay:]
    elif delay < 0:
        ref = ref[-delay:]
    n = min(len(ref), len(hyp))
    return ref[:n], hyp[:n]


@dataclass
class Scores:
    """Every metric of one reference/reconstruction pair; a missing one has an error."""

    delay_ms: float
    values: dict[str, float] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # time each metric took


def score(
    ref: np.ndarray,
    hyp: np.ndarray,
    sample_rate: int,
    compensate_delay: bool = True,
    metrics: tuple[str, ...] = METRICS,
    text: str | None = None,
) -> Scores:
    """`metrics` of `hyp` against `ref` (1-D, same rate), after delay compensation; `text`, a
    transcript of `ref`, for WER. Speaker similarity and WER need no alignment and take the
    whole signals, so the reference's own analysis is the same for all its reconstructions."""
    from codec.eval import perceptual

    ref, hyp = np.asarray(ref, dtype=np.float64), np.asarray(hyp, dtype=np.float64)
    whole = _at(ref, sample_rate, 16000), _at(hyp, sample_rate, 16000)  # before alignment
    max_delay = min(int(MAX_DELAY_SECONDS * sample_rate), max(len(ref), len(hyp)) - 1)
    delay = estimate_delay(ref, hyp, max_delay) if compensate_delay else 0
    ref, hyp = align(ref, hyp, delay)
    wide = _at(ref, sample_rate, 16000), _at(hyp, sample_rate, 16000)
    compute = {
        "pesq_wb": lambda: pesq_wb(*wide),
        "pesq_nb": lambda: pesq_nb(ref, hyp, sample_rate),
        "stoi": lambda: stoi(ref, hyp, sample_rate),
        "estoi": lambda: stoi(ref, hyp, sample_rate, extended=True),
        "si_sdr": lambda: si_sdr(ref, hyp),
        "mel_distance": lambda: mel_distance(ref, hyp, sample_rate),
        "pitch": lambda: perceptual.pitch(*wide),
        "dnsmos": lambda: perceptual.dnsmos(wide[1]),
        "plcmos": lambda: perceptual.plcmos(wide[1]),
        "visqol": lambda: perceptual.visqol(*wide),
        "speaker_similarity": lambda: perceptual.speaker_similarity(*whole),
        "wer": lambda: perceptual.word_error(*whole, text),
    }
    result = Scores(delay_ms=1000 * delay / sample_rate)
    for metric in metrics:
        start = time.perf_counter()
        try:
            values = compute[metric]()
        except Exception as error:  # noqa: BLE001  (one metric failing must not lose the others)
            for name in METRIC_VALUES[metric]:
                result.errors[name] = f"{type(error).__name__}: {error}".strip()
            continue
        finally:
            result.seconds[metric] = time.perf_counter() - start
        values = values if isinstance(values, dict) else {metric: values}
        for name in METRIC_VALUES[metric]:
            value = values.get(name, math.nan)
            if math.isfinite(value):
                result.values[name] = value
            else:
                result.errors[name] = "no value" if name not in values else f"not finite ({value})"
    return result
