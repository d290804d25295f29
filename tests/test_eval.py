"""`codec eval`: matching, summary statistics, reports, token usage."""

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import DATA
from typer.testing import CliRunner

import codec
from codec.audio import load_audio, save_audio
from codec.cli.app import app
from codec.eval.scoring import match, summary_stats


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_summary_statistics():
    stats = summary_stats([1.0, 2.0, 3.0, 4.0, math.nan])
    assert stats["mean"] == 2.5 and stats["n"] == 4 and stats["failed"] == 1
    assert stats["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1))
    assert stats["ci95"] == pytest.approx(3.182446 * stats["std"] / 2, rel=1e-5)  # t(3) quantile
    assert math.isnan(summary_stats([math.nan])["mean"])


def test_match_by_relative_path_and_by_utterance_id(tmp_path):
    for side in ("ref", "hyp"):
        for rel in ("a.wav", "sub/b.flac"):
            (tmp_path / side / rel).parent.mkdir(parents=True, exist_ok=True)
            save_audio(tmp_path / side / rel, np.zeros((1, 160)), 16000)
    pairs = match(tmp_path / "ref", tmp_path / "hyp")
    assert [p.key for p in pairs] == ["a", "sub/b"]
    (tmp_path / "ref.scp").write_text(f"u1 {tmp_path / 'ref/a.wav'}\n")
    (tmp_path / "hyp.scp").write_text(
        f"u1 {tmp_path / 'hyp/a.wav'}\nu2 {tmp_path / 'hyp/sub/b.flac'}\n"
    )
    assert [p.key for p in match(tmp_path / "ref.scp", tmp_path / "hyp.scp")] == ["u1"]
    with pytest.raises(ValueError, match="lacks 1 of the references"):
        match(tmp_path / "hyp.scp", tmp_path / "ref.scp")


def test_eval_writes_reports_and_reports_failures(tmp_path):
    speech, rate = load_audio(DATA / "speech_en.flac")
    (tmp_path / "ref").mkdir()
    (tmp_path / "hyp").mkdir()
    save_audio(tmp_path / "ref" / "same.wav", speech, rate)
    save_audio(tmp_path / "hyp" / "same.wav", np.roll(speech, 80, axis=1), rate)
    save_audio(tmp_path / "ref" / "silent.wav", np.zeros((1, 16000)), 16000)
    save_audio(tmp_path / "hyp" / "silent.wav", np.zeros((1, 16000)), 16000)
    result = run("eval", tmp_path / "ref", tmp_path / "hyp", "--out", tmp_path / "out", "--jobs", 2)
    assert result.exit_code == 0, result.output
    assert "silent" in result.output and "left out" in result.output
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary) >= {"pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "mel_distance"}
    assert summary["pesq_wb"]["n"] == 1 and summary["pesq_wb"]["failed"] == 1
    assert summary["pesq_wb"]["mean"] > 4.5 and summary["pesq_wb"]["ci95"] is None
    assert summary["delay_ms"]["n"] == 2
    rows = (tmp_path / "out" / "per_utt.csv").read_text().splitlines()
    assert rows[0].startswith("key,delay_ms,pesq_wb") and len(rows) == 3
    assert "| pesq_wb |" in (tmp_path / "out" / "summary.md").read_text()


def test_eval_needs_inputs_that_exist(tmp_path):
    assert run("eval").exit_code == 1
    result = run("eval", tmp_path / "nope", tmp_path)
    assert result.exit_code == 1 and "no such file or directory" in result.output


def test_token_usage_report(tmp_path):
    torch.manual_seed(0)
    codec.build_model("tiny").save(tmp_path / "m.ckpt")
    rng = np.random.default_rng(0)
    for i in range(2):
        save_audio(tmp_path / f"x{i}.wav", 0.3 * rng.standard_normal((1, 16000)), 16000)
    assert (
        run(
            "encode",
            tmp_path / "x0.wav",
            tmp_path / "x1.wav",
            "-o",
            tmp_path / "tok",
            "-m",
            tmp_path / "m.ckpt",
        ).exit_code
        == 0
    )
    result = run("eval", "--tokens", tmp_path / "tok", "--out", tmp_path / "rep")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "rep" / "tokens.json").read_text())
    assert report["frames"] == 100 and len(report["stages"]) == 2
    for stage in report["stages"]:
        assert stage["codebook_size"] == 16
        assert 0 < stage["utilisation"] <= 1 and 1 <= stage["perplexity"] <= 16
        assert stage["perplexity_ratio"] == pytest.approx(stage["perplexity"] / 16)
    assert report["nominal_kbps"] == pytest.approx(0.4)
    assert report["ideal_kbps"] == pytest.approx(
        50 * sum(s["entropy_bits"] for s in report["stages"]) / 1000
    )
    assert report["ideal_kbps"] <= report["nominal_kbps"] + 1e-9
    assert report["actual_kbps"] > report["nominal_kbps"]  # fixed-rate files, with framing


def test_unreadable_hypotheses_are_reported_and_the_rest_scored(tmp_path):
    """One empty and one NaN hypothesis among good ones: per_utt.csv has every row."""
    speech, rate = load_audio(DATA / "speech_en.flac")
    (tmp_path / "ref").mkdir()
    (tmp_path / "hyp").mkdir()
    for name in ("good", "empty", "nan"):
        save_audio(tmp_path / "ref" / f"{name}.wav", speech, rate)
    save_audio(tmp_path / "hyp" / "good.wav", speech, rate)
    (tmp_path / "hyp" / "empty.wav").write_bytes(b"")
    broken = speech.astype(np.float32).copy()
    broken[0, 100] = np.nan
    sf.write(tmp_path / "hyp" / "nan.wav", broken.T, rate, subtype="FLOAT")
    result = run("eval", tmp_path / "ref", tmp_path / "hyp", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "out" / "per_utt.csv").read_text().splitlines()
    assert len(rows) == 4 and sum("audio: " in row for row in rows) == 2
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["pesq_wb"]["n"] == 1 and summary["pesq_wb"]["failed"] == 2
