"""Audio I/O: channels first, resampling, errors that name the file."""

import numpy as np
import pytest

from codec.audio import load_audio, save_audio


def test_write_read_round_trip(tmp_path):
    t = np.arange(8000) / 8000
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 200 * t), 0.25 * np.sin(2 * np.pi * 300 * t)])
    save_audio(tmp_path / "x.wav", stereo, 8000)
    wav, rate = load_audio(tmp_path / "x.wav")
    assert rate == 8000 and wav.shape == (2, 8000) and wav.dtype == np.float32
    assert np.abs(wav - stereo).max() < 1e-4


def test_resampling_keeps_duration_and_pitch(tmp_path):
    t = np.arange(44100) / 44100
    save_audio(tmp_path / "x.flac", 0.5 * np.sin(2 * np.pi * 440 * t)[None], 44100)
    wav, rate = load_audio(tmp_path / "x.flac", sample_rate=16000)
    assert rate == 16000 and wav.shape == (1, 16000)
    peak_hz = np.argmax(np.abs(np.fft.rfft(wav[0]))) * 16000 / wav.shape[1]
    assert abs(peak_hz - 440) < 2


def test_unreadable_file_names_the_path(tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    with pytest.raises(ValueError, match="bad.wav"):
        load_audio(bad)
