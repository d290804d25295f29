"""Metrics beyond the signal measures: pitch, predicted MOS, ViSQOL, speaker similarity and
word error rate. Every model ships inside its package wheel: nothing is downloaded at run time.

Signals are 1-D float arrays at 16 kHz. Each function returns a dict of named values; the
packages are imported on first use, and a missing one raises MetricUnavailable naming what to
install (`pip install codec[metrics]`, which `make install` does).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from functools import lru_cache

import numpy as np

RATE = 16000
PACKAGES = {  # metric -> the distribution that provides it
    "dnsmos": "speechmos",
    "plcmos": "speechmos",
    "visqol": "visqol-python",
    "speaker_similarity": "resemblyzer",
    "wer": "pocketsphinx",
}
MODULES = {  # metric -> the module it imports
    "dnsmos": "speechmos.dnsmos",
    "plcmos": "speechmos.plcmos",
    "visqol": "visqol.api",
    "speaker_similarity": "resemblyzer",
    "wer": "pocketsphinx",
}
F0_RANGE = (60.0, 400.0)  # Hz, speech
F0_HOP = 320  # 20 ms at 16 kHz
F0_RESOLUTION = 0.2  # semitones between pYIN's pitch states: 20 cents (librosa: 10, 3.5x slower)


class MetricUnavailable(RuntimeError):
    """A metric whose package is not installed."""


def _require(metric: str, module: str):
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MetricUnavailable(
            f"metric {metric} needs the package {PACKAGES[metric]}: pip install 'codec[metrics]'"
            f" ({error})"
        ) from error


def package_versions() -> dict[str, str | None]:
    """Installed version of each metric package (None if missing), for reports."""
    out = {}
    for name in sorted({*PACKAGES.values(), "jiwer", "pesq", "pystoi", "librosa"}):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


class _PerSignal:
    """Remembers what a function computed on recent signals (by content), so that a
    reference scored against many reconstructions is analysed once."""

    def __init__(self, fn, size: int = 4096) -> None:
        self.fn, self.size, self.memo = fn, size, {}

    def __call__(self, x: np.ndarray):
        key = hashlib.sha1(np.ascontiguousarray(x, dtype=np.float32).tobytes()).digest()
        if key not in self.memo:
            if len(self.memo) >= self.size:
                self.memo.pop(next(iter(self.memo)))
            self.memo[key] = self.fn(x)
        return self.memo[key]


def _f0_track(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import librosa

    low, high = F0_RANGE
    f0, voiced, _ = librosa.pyin(
        x.astype(np.float32), fmin=low, fmax=high, sr=RATE, frame_length=1024, hop_length=F0_HOP,
        n_thresholds=50, resolution=F0_RESOLUTION,
    )  # fmt: skip
    return f0, voiced


_reference_f0 = _PerSignal(_f0_track)


def pitch(ref: np.ndarray, hyp: np.ndarray) -> dict[str, float]:
    """F0 RMSE in cents over frames both call voiced, and the voicing decision error (share of
    frames voiced in one and not the other), from librosa's pYIN."""
    (f_ref, v_ref), (f_hyp, v_hyp) = _reference_f0(ref), _f0_track(hyp)
    n = min(len(f_ref), len(f_hyp))
    f_ref, v_ref, f_hyp, v_hyp = f_ref[:n], v_ref[:n], f_hyp[:n], v_hyp[:n]
    both = v_ref & v_hyp
    out = {"voicing_error": float(np.mean(v_ref != v_hyp))}
    if both.any():
        cents = 1200 * np.log2(f_hyp[both] / f_ref[both])
        out["f0_rmse_cents"] = float(np.sqrt(np.mean(cents**2)))
    return out


def dnsmos(hyp: np.ndarray) -> dict[str, float]:
    """DNSMOS P.835 (speech, background, overall) and P.808 MOS, non-intrusive: 1 to 5."""
    module = _require("dnsmos", "speechmos.dnsmos")
    result = module.run(np.clip(hyp, -1, 1).astype(np.float32), RATE)
    return {
        "dnsmos_sig": float(result["sig_mos"]),
        "dnsmos_bak": float(result["bak_mos"]),
        "dnsmos_ovrl": float(result["ovrl_mos"]),
        "dnsmos_p808": float(result["p808_mos"]),
    }


def plcmos(hyp: np.ndarray) -> dict[str, float]:
    """PLCMOS v2: predicted MOS of packet-loss concealment artefacts, non-intrusive."""
    module = _require("plcmos", "speechmos.plcmos")
    return {"plcmos": float(module.run(np.clip(hyp, -1, 1).astype(np.float32), RATE)["plcmos"])}


@lru_cache(maxsize=1)
def _visqol_api():
    api_module = _require("visqol", "visqol.api")
    api = api_module.VisqolApi()
    api.create(mode="speech", use_lattice_model=True)  # the C++ default mapping
    return api


def visqol(ref: np.ndarray, hyp: np.ndarray) -> dict[str, float]:
    """ViSQOL v3 speech mode (lattice mapping), MOS-LQO from 1 to about 4.75."""
    result = _visqol_api().measure_from_arrays(ref.astype(np.float64), hyp.astype(np.float64), RATE)
    return {"visqol": float(result.moslqo)}


@lru_cache(maxsize=1)
def _voice_encoder():
    module = _require("speaker_similarity", "resemblyzer")
    return module.VoiceEncoder(device="cpu", verbose=False)


def _speaker_embedding(x: np.ndarray) -> np.ndarray:
    from resemblyzer import preprocess_wav

    return _voice_encoder().embed_utterance(preprocess_wav(x.astype(np.float32), RATE))


_reference_embedding = _PerSignal(_speaker_embedding)


def speaker_similarity(ref: np.ndarray, hyp: np.ndarray) -> dict[str, float]:
    """Cosine similarity of the two signals' speaker embeddings (resemblyzer): 1 is the same."""
    a, b = _reference_embedding(ref), _speaker_embedding(hyp)
    return {"speaker_similarity": float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))}


@lru_cache(maxsize=1)
def _recognizer():
    module = _require("wer", "pocketsphinx")
    # No second (flat-lexicon) pass and at most 3000 active HMMs a frame: 2x faster on coded
    # speech (and on other languages, where the search widens), word error on clean US-English
    # prompts 0.205 instead of 0.189; the codec's effect is read against the reference anyway.
    return module.Decoder(samprate=RATE, logfn="/dev/null", fwdflat=False, maxhmmpf=3000)


def recognise(x: np.ndarray) -> str:
    """PocketSphinx's US-English transcript of `x`, lower case."""
    decoder = _recognizer()
    decoder.start_utt()
    decoder.process_raw((np.clip(x, -1, 1) * 32767).astype(np.int16).tobytes(), full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return hypothesis.hypstr.lower() if hypothesis is not None else ""


_reference_words = _PerSignal(recognise)


def word_error(ref: np.ndarray, hyp: np.ndarray, text: str | None = None) -> dict[str, float]:
    """Word error rate of the recognizer on `hyp` against `text`, and on `ref` against it too,
    so the change is what the codec did (the recognizer is weak). Without `text`, the
    recognizer's output on `ref` is the transcript, and `wer_ref` is 0 by construction."""
    jiwer = _require("wer", "jiwer")
    reference_words = _reference_words(ref)
    truth = normalise_text(text) if text is not None else reference_words
    if not truth:
        raise ValueError("no words to score against (empty transcript)")
    return {
        "wer": float(jiwer.wer(truth, recognise(hyp) or "<silence>")),
        "wer_ref": float(jiwer.wer(truth, reference_words or "<silence>")),
    }


def normalise_text(text: str) -> str:
    """Lower case, letters, digits and apostrophes only, single spaces."""
    kept = "".join(c if c.isalnum() or c == "'" else " " for c in text.lower())
    return " ".join(kept.split())
