"""Kaldi data directories: wav.scp, segments, and the errors a user sees."""

from pathlib import Path

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


def test_debian_asterisk_prompts_get_their_transcripts(tmp_path):
    """Real G.722 prompts in a package's layout, and the transcript file of the package
    asterisk-core-sounds-en: every split gets a Kaldi `text` keyed like its wav.scp."""
    import gzip
    import subprocess

    import imageio_ffmpeg
    from helpers import DATA

    from codec.data.kaldi import read_text, read_wav_scp
    from codec.data.prepare import prepare_debian_speech

    def package(name: str, lang: str) -> Path:
        sounds = tmp_path / name / "usr/share/asterisk/sounds" / lang
        for prompt, source in (("demo-nomatch", "speech_en"), ("digits/1", "speech_en2")):
            (sounds / prompt).parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i",
                 str(DATA / f"{source}.flac"), "-ar", "16000", "-f", "g722",
                 str(sounds / f"{prompt}.g722")],
                check=True,
            )  # fmt: skip
        return tmp_path / name

    transcripts = tmp_path / "core-sounds-en.txt.gz"
    with gzip.open(transcripts, "wt") as stream:
        stream.write("; Core Asterisk Sounds in English\n\n")
        stream.write("demo-nomatch: I'm sorry there are no matches for those keywords\n")
        stream.write("digits/1: one\n")
    extracted = {
        "asterisk-core-sounds-en-g722": package("en", "en_US_f_Allison"),
        "asterisk-core-sounds-fr-g722": package("fr", "fr_CA_f_June"),
    }
    counts = prepare_debian_speech(
        extracted, tmp_path / "work", tmp_path / "data", ("asterisk-core-sounds-fr-g722",),
        transcripts={"asterisk-core-sounds-en-g722": transcripts},
    )  # fmt: skip
    assert counts["test"] == 2  # the held-out package: no transcripts given, no text
    assert not (tmp_path / "data" / "test" / "text").exists()
    texts, ids = {}, set()
    for split in ("train", "dev"):  # two files: dev takes one of them
        texts |= read_text(tmp_path / "data" / split / "text")
        ids |= set(read_wav_scp(tmp_path / "data" / split))
    assert texts == {
        "asterisk-en-en_US_f_Allison_demo-nomatch": (
            "I'm sorry there are no matches for those keywords"
        ),
        "asterisk-en-digits_1": "one",
    }
    assert set(texts) == ids
