"""Quality metrics on known cases."""

import numpy as np
import pytest
from helpers import load_speech

from codec.eval.metrics import pesq_wb, si_sdr, stoi


@pytest.fixture(scope="module")
def speech():
    return load_speech().numpy().reshape(-1).astype(np.float64)


def test_identical_signals_score_at_the_top(speech):
    assert pesq_wb(speech, speech) == pytest.approx(4.64, abs=0.01)
    assert stoi(speech, speech, 16000) == pytest.approx(1.0, abs=1e-6)
    assert si_sdr(speech, speech) > 100


def test_noise_scores_low(speech):
    noise = np.random.default_rng(0).standard_normal(speech.shape) * speech.std()
    assert pesq_wb(speech, noise) < 1.5
    assert stoi(speech, noise, 16000) < 0.5
    assert si_sdr(speech, noise) < -10


def test_si_sdr_ignores_scale_and_measures_added_noise(speech):
    rng = np.random.default_rng(1)
    noisy = speech + rng.standard_normal(speech.shape) * speech.std() * 0.1  # 20 dB SNR
    assert si_sdr(speech, 0.3 * speech) > 100
    assert si_sdr(speech, noisy) == pytest.approx(20.0, abs=0.5)


def test_narrow_band_audio_is_refused_for_wide_band_pesq(speech):
    with pytest.raises(ValueError, match="16 kHz"):
        pesq_wb(speech, speech, sample_rate=8000)
