"""`codec bench` on two short real-speech files, with Opus and Codec2 really run."""

import json
import re
import shutil

import pytest
import soundfile as sf
import torch
from helpers import DATA
from typer.testing import CliRunner

import codec
from codec.audio import load_audio
from codec.cli.app import app
from codec.eval.baselines import BaselineToolMissing, baselines, require


def test_bench_end_to_end(tmp_path):
    torch.manual_seed(0)
    model = codec.build_model("tiny").eval()
    audio = tmp_path / "audio"
    audio.mkdir()
    for name in ("speech_en.flac", "speech_en2.flac"):
        shutil.copy(DATA / name, audio / name)
    model.fit_entropy([torch.from_numpy(load_audio(p, 16000)[0])[:, None] for p in audio.iterdir()])
    model.save(tmp_path / "m.ckpt")
    result = CliRunner().invoke(
        app,
        [
            "bench",
            str(audio),
            "--out",
            str(tmp_path / "out"),
            "-m",
            str(tmp_path / "m.ckpt"),
            "--stages",
            "1,2",
            "--long-seconds",
            "20",
            "--metrics",
            "pesq_wb,stoi,visqol",
            "--listen",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "out" / "bench.json").read_text())
    settings = [(r["codec"], r["setting"]) for r in rows]
    assert settings[:2] == [("codec", "1 stages"), ("codec", "2 stages")]
    assert {("opus", f"{k}kbps") for k in (6, 8, 12, 16)} <= set(settings)
    assert {("codec2", m) for m in ("3200", "1600", "700C")} <= set(settings)
    for row in rows:
        assert set(row) == {
            "codec",
            "setting",
            "kbps",
            "fixed_rate_kbps",
            "pesq_wb",
            "stoi",
            "visqol",
            "stats",
            "rtf",
            "latency_ms",
        }
        assert row["stats"]["visqol"]["n"] == 2 and row["stats"]["stoi"]["ci95"] > 0
        assert row["rtf"] > 0
        if row["codec"] == "codec":  # entropy-coded files, the fixed-rate rate beside them
            assert 0 < row["kbps"] < row["fixed_rate_kbps"]
        else:
            assert row["fixed_rate_kbps"] == row["kbps"]
    by = {(r["codec"], r["setting"]): r for r in rows}
    # measured from file sizes: Codec2 files are headerless, Opus files carry Ogg framing
    assert by[("codec2", "3200")]["kbps"] == pytest.approx(3.2, rel=0.03)
    assert 6.0 < by[("opus", "6kbps")]["kbps"] < by[("opus", "16kbps")]["kbps"]
    # real codecs on real speech: Opus 16 kbps is near transparent, and beats Codec2 700C
    assert by[("opus", "16kbps")]["pesq_wb"] > 3.5 and by[("opus", "16kbps")]["stoi"] > 0.95
    assert by[("codec2", "700C")]["stoi"] < by[("opus", "16kbps")]["stoi"]
    assert (tmp_path / "out" / "rd.png").stat().st_size > 10_000
    markdown = (tmp_path / "out" / "bench.md").read_text()
    assert "| opus | 8kbps |" in markdown and "encode RTF" in markdown and "latency" in markdown
    # the command itself, timed on one CPU over a long file made from the bench audio
    command = json.loads((tmp_path / "out" / "speed.json").read_text())["command_1_cpu"]
    assert command["audio_seconds"] >= 20
    assert command["encode_seconds"] > 0 and command["decode_seconds"] > 0
    assert command["rtf"] == pytest.approx(
        (command["encode_seconds"] + command["decode_seconds"]) / command["audio_seconds"]
    )
    assert "process start-up included" in markdown and "fixed-rate files: RTF" in markdown
    assert "ViSQOL" in markdown
    # the listening page: one file, its reference and every setting, playable from disk
    page = (tmp_path / "out" / "index.html").read_text()
    players = re.findall(r"<audio controls preload='none' src='([^']+)'>", page)
    assert len(players) == 1 + len(rows) and "rd.png" in page
    for src in players:
        assert not src.startswith("/") and sf.info(tmp_path / "out" / src).samplerate == 16000
    assert "speech_en" in page and "ViSQOL" in page
    assert command["fixed_rate_rtf"] > 0


def test_missing_tools_are_named_with_the_install_command(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(
        BaselineToolMissing, match="opusenc is not installed: run tools/install_baselines.sh"
    ):
        require("opusenc")
    with pytest.raises(BaselineToolMissing, match="c2enc"):
        baselines()[-1].code(torch.zeros(8000).numpy(), 16000)
