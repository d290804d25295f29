"""Kaldi data directories: wav.scp, segments, and the errors a user sees."""

import numpy as np
import pytest

from codec.audio import save_audio
from codec.data.kaldi import load_utterance, read_data_dir


@pytest.fixture
def data_dir(tmp_path):
    audio = tmp_path / "a.wav"
    save_audio(audio, np.linspace(-0.5, 0.5, 16000)[None], 16000)
    data = tmp_path / "data"
    data.mkdir()
    (data / "wav.scp").write_text(f"rec1 {audio}\n\n")
    return data


def test_whole_recordings(data_dir):
    (utt,) = read_data_dir(data_dir)
    assert utt.id == "rec1" and utt.end is None
    assert load_utterance(utt, 16000).shape == (1, 16000)


def test_segments_cut_recordings(data_dir):
    (data_dir / "segments").write_text("u1 rec1 0.25 0.75\nu2 rec1 0.5 1.0\n")
    utts = read_data_dir(data_dir)
    assert [u.id for u in utts] == ["u1", "u2"]
    first = load_utterance(utts[0], 16000)
    assert first.shape == (1, 8000)
    assert first[0, 0] == pytest.approx(-0.25, abs=1e-3)


def test_errors_name_the_problem(data_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="no wav.scp"):
        read_data_dir(tmp_path)
    (data_dir / "wav.scp").write_text("rec1 /no/such/file.wav\n")
    with pytest.raises(FileNotFoundError, match="1 missing files"):
        read_data_dir(data_dir)
    (data_dir / "wav.scp").write_text("rec1 sox in.wav -t wav - |\n")
    with pytest.raises(ValueError, match="command pipe"):
        read_data_dir(data_dir)
    (data_dir / "wav.scp").write_text("lonely\n")
    with pytest.raises(ValueError, match="wav.scp:1: expected 2 fields"):
        read_data_dir(data_dir)


def test_validation_names_bad_files_and_rates(data_dir, tmp_path):
    import soundfile as sf

    from codec.data.kaldi import validate_data_dir

    assert validate_data_dir(data_dir) == {"rec1": 1.0}
    assert validate_data_dir(data_dir, 16000) == {"rec1": 1.0}
    with pytest.raises(ValueError, match="at 16000 Hz, expected 8000"):
        validate_data_dir(data_dir, 8000)
    (tmp_path / "bad.wav").write_bytes(b"junk")
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1)), 16000)
    scp = (
        data_dir / "wav.scp"
    ).read_text() + f"bad {tmp_path / 'bad.wav'}\nempty {tmp_path / 'empty.wav'}\n"
    (data_dir / "wav.scp").write_text(scp)
    with pytest.raises(ValueError, match="2 bad utterances") as error:
        validate_data_dir(data_dir)
    assert "bad: cannot read" in str(error.value) and "empty: no audio" in str(error.value)
