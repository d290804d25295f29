"""Quality metrics on known cases: identical, delayed, scaled, noisy, silent."""

import librosa
import numpy as np
import pytest
from helpers import load_speech

from codec.eval.metrics import align, estimate_delay, pesq_wb, score, si_sdr, stoi


@pytest.fixture(scope="module")
def speech():
    return load_speech().numpy().reshape(-1).astype(np.float64)


def test_identical_signals_score_at_the_top(speech):
    result = score(speech, speech, 16000)
    assert result.delay_ms == 0.0 and not result.errors
    v = result.values
    assert v["pesq_wb"] == pytest.approx(4.64, abs=0.01)
    assert v["pesq_nb"] > 4.4
    assert v["stoi"] == pytest.approx(1.0, abs=1e-6) and v["estoi"] == pytest.approx(1.0, abs=1e-6)
    assert v["si_sdr"] > 100 and v["mel_distance"] == 0.0


@pytest.mark.parametrize("delay", [37, 400, -120])
def test_a_delayed_copy_is_found_and_aligned(speech, delay):
    shifted = np.roll(speech, delay)
    assert estimate_delay(speech, shifted, 1000) == delay
    result = score(speech, shifted, 16000)
    assert result.delay_ms == pytest.approx(1000 * delay / 16000)
    assert result.values["pesq_wb"] > 4.5 and result.values["stoi"] > 0.99


@pytest.mark.parametrize("delay", [0, 160])
def test_the_delay_of_a_phase_scrambled_copy_is_found(speech, delay):
    """A vocoder-like output (same spectral envelope, other phases) must not fool the delay
    search as badly as it fools a plain waveform cross-correlation (12 ms for an aligned codec)."""
    spectrum = librosa.stft(speech, n_fft=512, hop_length=128)
    phases = np.exp(2j * np.pi * np.random.default_rng(0).random(spectrum.shape))
    scrambled = librosa.istft(np.abs(spectrum) * phases, hop_length=128, length=len(speech))
    shifted = np.concatenate([np.zeros(delay), scrambled])[: len(scrambled)]
    # within about 6 ms (STOI frames are 25.6 ms); the waveform cross-correlation alone was
    # 50 ms off on this signal
    assert abs(estimate_delay(speech, shifted, 4000) - delay) <= 100


def test_delay_changes_the_scores_when_not_compensated(speech):
    shifted = np.concatenate([np.zeros(400), speech])[: len(speech)]
    assert score(speech, shifted, 16000, compensate_delay=False).values["stoi"] < 0.9


def test_white_noise_scores_low(speech):
    noise = np.random.default_rng(0).standard_normal(speech.shape) * speech.std()
    v = score(speech, noise, 16000).values
    assert v["pesq_wb"] < 1.3 and v["pesq_nb"] < 1.5
    assert v["estoi"] < 0.1 and v["si_sdr"] < -10 and v["mel_distance"] > 1.0


def test_scores_fall_as_noise_grows(speech):
    rng = np.random.default_rng(1)
    results = [
        score(speech, speech + rng.standard_normal(speech.shape) * speech.std() * g, 16000).values
        for g in (0.01, 0.1, 0.5)
    ]
    for metric in ("pesq_wb", "stoi", "si_sdr"):
        assert results[0][metric] > results[1][metric] > results[2][metric]
    assert results[0]["mel_distance"] < results[1]["mel_distance"] < results[2]["mel_distance"]


def test_si_sdr_ignores_scale_and_measures_added_noise(speech):
    noisy = speech + np.random.default_rng(2).standard_normal(speech.shape) * speech.std() * 0.1
    assert si_sdr(speech, 0.3 * speech) > 100
    assert si_sdr(speech, noisy) == pytest.approx(20.0, abs=0.5)


def test_failures_are_reported_per_metric_not_raised():
    silence = np.zeros(16000)
    result = score(silence, silence, 16000)
    assert "pesq_wb" in result.errors and "pesq_wb" not in result.values
    assert "si_sdr" in result.values


def test_align_cuts_to_the_common_length():
    ref, hyp = np.arange(10.0), np.arange(12.0)
    a, b = align(ref, hyp, 2)
    assert len(a) == len(b) == 10 and b[0] == 2.0


def test_narrow_band_audio_is_refused_for_wide_band_pesq(speech):
    with pytest.raises(ValueError, match="16 kHz"):
        pesq_wb(speech, speech, sample_rate=8000)
    assert stoi(speech, speech, 16000) == pytest.approx(1.0, abs=1e-6)
