"""Perceptual metrics on real speech: identical input, and clean > mildly > badly degraded."""

import json

import numpy as np
import pytest
import soundfile as sf
import soxr
from helpers import DATA
from typer.testing import CliRunner

from codec.cli.app import app
from codec.eval import perceptual
from codec.eval.metrics import score, select_metrics, value_names

CLEAN, _ = sf.read(DATA / "speech_en.flac", dtype="float32")
OTHER, _ = sf.read(DATA / "speech_fr.flac", dtype="float32")  # another speaker


def noisy(snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(CLEAN.size).astype(np.float32)
    return CLEAN + noise * CLEAN.std() * 10 ** (-snr_db / 20)


MILD, BAD = noisy(20), noisy(0)


def test_pitch_is_zero_for_identical_input_and_measures_a_shift_in_cents():
    same = perceptual.pitch(CLEAN, CLEAN)
    assert same == {"voicing_error": 0.0, "f0_rmse_cents": 0.0}
    up = soxr.resample(CLEAN, 16000, 16000 / 2 ** (100 / 1200))  # one semitone up, 6% shorter
    shifted = perceptual.pitch(CLEAN[: up.size], up)
    assert 60 < shifted["f0_rmse_cents"] < 400
    assert (
        perceptual.pitch(CLEAN, BAD)["voicing_error"]
        > perceptual.pitch(CLEAN, MILD)["voicing_error"]
    )


def test_dnsmos_and_plcmos_rank_clean_above_degraded():
    scores = [perceptual.dnsmos(x) for x in (CLEAN, MILD, BAD)]
    for key in ("dnsmos_ovrl", "dnsmos_p808"):
        assert scores[0][key] > scores[1][key] > scores[2][key], key
    gaps = CLEAN.copy()
    for start in range(0, CLEAN.size, 3200):  # 40 ms lost every 200 ms
        gaps[start : start + 640] = 0
    worse = CLEAN.copy()
    for start in range(0, CLEAN.size, 3200):  # 120 ms lost every 200 ms
        worse[start : start + 1920] = 0
    plc = [perceptual.plcmos(x)["plcmos"] for x in (CLEAN, gaps, worse)]
    assert plc[0] > plc[1] > plc[2]


def test_visqol_is_highest_for_identical_input():
    # ViSQOL is harsh on broadband noise (20 dB SNR already scores its floor, 1.0)
    same, mild, bad = (perceptual.visqol(CLEAN, x)["visqol"] for x in (CLEAN, noisy(40), noisy(30)))
    assert same > 4.3 and same > mild > bad


def test_speaker_similarity_is_one_for_the_same_signal_and_lower_for_another_voice():
    same, mild, bad = (
        perceptual.speaker_similarity(CLEAN, x)["speaker_similarity"] for x in (CLEAN, MILD, BAD)
    )
    other = perceptual.speaker_similarity(CLEAN, OTHER)["speaker_similarity"]
    assert same == pytest.approx(1.0, abs=1e-5) and same > mild > bad and mild > other


def test_wer_against_the_recognizer_and_against_a_transcript():
    assert perceptual.word_error(CLEAN, CLEAN) == {"wer": 0.0, "wer_ref": 0.0}
    assert perceptual.word_error(CLEAN, BAD)["wer"] > 0.3
    truth = "I'm sorry, there are no matches for those keywords."  # what the prompt says
    scored = perceptual.word_error(CLEAN, CLEAN, truth)
    assert scored["wer"] == scored["wer_ref"] < 1.0  # the same audio, the same recognizer
    assert perceptual.normalise_text(truth) == "i'm sorry there are no matches for those keywords"


def test_metric_selection_and_one_line_errors():
    assert select_metrics("default,visqol")[-1] == "visqol"
    assert "wer_ref" in value_names(select_metrics("all"))
    with pytest.raises(ValueError, match="unknown metric 'mos'"):
        select_metrics("pesq_wb,mos")
    result = score(CLEAN, MILD, 16000, metrics=("stoi", "speaker_similarity"))
    assert set(result.values) == {"stoi", "speaker_similarity"}


def test_eval_command_with_all_metrics_records_versions(tmp_path):
    (tmp_path / "ref").mkdir()
    (tmp_path / "hyp").mkdir()
    sf.write(tmp_path / "ref" / "u1.wav", CLEAN, 16000)
    sf.write(tmp_path / "hyp" / "u1.wav", MILD, 16000)
    (tmp_path / "text").write_text("u1 I'm sorry, there are no matches for those keywords.\n")
    args = ["eval", str(tmp_path / "ref"), str(tmp_path / "hyp"), "--out", str(tmp_path / "s")]
    result = CliRunner().invoke(app, [*args, "--metrics", "all", "--text", str(tmp_path / "text")])
    assert result.exit_code == 0, result.output
    assert "WER is scored against the transcripts in" in result.output
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    for name in value_names(select_metrics("all")):
        assert summary[name]["n"] == 1, name
    assert summary["packages"]["visqol-python"] and summary["packages"]["speechmos"]
    bad = CliRunner().invoke(app, [*args, "--metrics", "pesq,stoi"])
    assert bad.exit_code == 1 and "unknown metric 'pesq'" in bad.output


def test_eval_takes_the_transcripts_beside_the_references_wav_scp(tmp_path):
    for side, audio in (("ref", CLEAN), ("hyp", MILD)):
        (tmp_path / side).mkdir()
        sf.write(tmp_path / side / "u1.wav", audio, 16000)
        (tmp_path / side / "wav.scp").write_text(f"u1 {tmp_path / side / 'u1.wav'}\n")
    (tmp_path / "ref" / "text").write_text(
        "u1 I'm sorry, there are no matches for those keywords\n"
    )
    args = ["eval", str(tmp_path / "ref" / "wav.scp"), str(tmp_path / "hyp" / "wav.scp")]
    result = CliRunner().invoke(app, [*args, "--metrics", "wer"])
    assert result.exit_code == 0, result.output
    assert f"WER is scored against the transcripts in {tmp_path / 'ref' / 'text'}" in result.output
    (tmp_path / "ref" / "text").unlink()
    result = CliRunner().invoke(app, [*args, "--metrics", "wer"])
    assert "the recognizer's output on each reference" in result.output
