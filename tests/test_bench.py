"""`codec bench` on two short real-speech files, with Opus and Codec2 really run."""

import json
import re
import shutil
import subprocess

import pytest
import soundfile as sf
import torch
from helpers import DATA
from typer.testing import CliRunner

import codec
from codec.audio import load_audio
from codec.cli.app import app
from codec.eval.baselines import BaselineToolMissing, baselines, require

TRANSCRIPTS = {  # core-sounds-en.txt of the Debian package asterisk-core-sounds-en
    "speech_en": "I'm sorry there are no matches for those keywords",
    "speech_en2": "press 2 to call the person who sent this message",
}


@pytest.fixture(scope="module")
def bench_out(tmp_path_factory):
    """`codec bench` of a tiny model on a Kaldi data directory of two real prompts (with their
    transcripts), one file on the listening page; returns the output folder."""
    tmp_path = tmp_path_factory.mktemp("bench")
    torch.manual_seed(0)
    model = codec.build_model("tiny").eval()
    data = tmp_path / "data"
    data.mkdir()
    for name in TRANSCRIPTS:
        shutil.copy(DATA / f"{name}.flac", data / f"{name}.flac")
    (data / "wav.scp").write_text("".join(f"{n} {data / n}.flac\n" for n in TRANSCRIPTS))
    (data / "text").write_text("".join(f"{n} {t}\n" for n, t in TRANSCRIPTS.items()))
    model.fit_entropy(
        [torch.from_numpy(load_audio(p, 16000)[0])[:, None] for p in data.glob("*.flac")]
    )
    model.save(tmp_path / "m.ckpt")
    result = CliRunner().invoke(
        app,
        [
            "bench",
            str(data),
            "--out",
            str(tmp_path / "out"),
            "-m",
            str(tmp_path / "m.ckpt"),
            "--stages",
            "1,2",
            "--long-seconds",
            "20",
            "--metrics",
            "pesq_wb,stoi,visqol,wer",
            "--listen",
            "1",
            "--jobs",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    return tmp_path / "out"


def test_bench_end_to_end(bench_out):
    tmp_path = bench_out.parent
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
            "wer",
            "wer_ref",
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
    # WER against the data directory's transcripts, said so; the baselines' versions recorded
    assert "WER is scored against the transcripts of the data directory's `text`" in markdown
    assert re.search(r"opus-tools [0-9.]+ \(using libopus [0-9.]+\)", markdown)
    assert by[("opus", "16kbps")]["wer"] <= by[("codec2", "700C")]["wer"]
    # the listening page: one file, its reference and every setting, playable from disk
    page = (tmp_path / "out" / "index.html").read_text()
    players = re.findall(r"<audio controls preload='metadata' src='([^']+)'>", page)
    assert len(players) == 1 + len(rows) and "rd.png" in page
    for src in players:
        assert not src.startswith("/") and sf.info(tmp_path / "out" / src).samplerate == 16000
    assert "speech_en" in page and "ViSQOL" in page
    assert command["fixed_rate_rtf"] > 0


BROWSER_CHECK = """<!doctype html><html><body><pre id="result">pending</pre>
<iframe id="page" src="index.html" width="1200" height="900"></iframe><script>
const frame = document.getElementById("page");
frame.onload = async () => {
  const doc = frame.contentDocument;
  const durations = await Promise.all(Array.from(doc.querySelectorAll("audio")).map(
    (a) => new Promise((done) => {
      a.addEventListener("loadedmetadata", () => done(a.duration));
      a.addEventListener("error", () => done(-1));
      a.preload = "metadata";
      a.load();
    })));
  const images = Array.from(doc.images).map((i) => (i.complete ? i.naturalWidth : -1));
  document.getElementById("result").textContent = JSON.stringify({durations, images});
};
</script></body></html>"""


def test_listening_page_plays_in_a_real_browser(bench_out):
    """Headless Chromium opens index.html from disk: every audio element loads its file and
    the plot loads; a screenshot of the page is saved beside it."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is missing: run tools/install_baselines.sh"
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    check = bench_out / "browser_check.html"  # beside the page: same folder, relative link
    check.write_text(BROWSER_CHECK)
    done = subprocess.run(
        [*flags, "--allow-file-access-from-files", "--virtual-time-budget=20000", "--dump-dom",
         check.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'<pre id="result">([^<]*)</pre>', done.stdout)
    assert found, done.stderr[-2000:]
    result = json.loads(found.group(1))
    page = (bench_out / "index.html").read_text()
    assert len(result["durations"]) == page.count("<audio ") > 0
    assert all(d > 3 for d in result["durations"]), result  # the prompts last 3.6-3.7 s
    assert result["images"] and all(w > 0 for w in result["images"]), result
    shot, page_uri = bench_out / "screenshot.png", (bench_out / "index.html").as_uri()
    subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1200,1400", page_uri],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    assert shot.stat().st_size > 20_000


def test_missing_tools_are_named_with_the_install_command(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(
        BaselineToolMissing, match="opusenc is not installed: run tools/install_baselines.sh"
    ):
        require("opusenc")
    with pytest.raises(BaselineToolMissing, match="c2enc"):
        baselines()[-1].code(torch.zeros(8000).numpy(), 16000)


def test_baselines_option_runs_only_the_named_settings(tmp_path, monkeypatch):
    """`--baselines codec2-3200` runs that one classical row (Opus need not be installed for
    it), `--baselines none` none, and a wrong name is refused with the list of names."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(DATA / "speech_en.flac", data / "speech_en.flac")
    torch.manual_seed(0)
    model = codec.build_model("tiny").eval()
    model.save(tmp_path / "m.ckpt")
    common = ["bench", str(data), "-m", str(tmp_path / "m.ckpt"), "--stages", "1"]
    common += ["--long-seconds", "2", "--metrics", "stoi", "--listen", "0", "--jobs", "1"]
    # opusenc hidden from PATH: only Codec2's tools are required for the one row asked
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("c2enc", "c2dec"):
        (tools / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(tools))
    for spec, expected in (("codec2-3200", [("codec2", "3200")]), ("none", [])):
        out = tmp_path / spec
        result = CliRunner().invoke(app, [*common, "--out", str(out), "--baselines", spec])
        assert result.exit_code == 0, result.output
        rows = json.loads((out / "bench.json").read_text())
        assert [(r["codec"], r["setting"]) for r in rows] == [("codec", "1 stages"), *expected]
        assert ("codec2 " in (out / "bench.md").read_text()) == bool(expected)
    result = CliRunner().invoke(
        app, [*common, "--out", str(tmp_path / "x"), "--baselines", "opus-7kbps"]
    )
    assert result.exit_code != 0
    assert "unknown baseline opus-7kbps" in result.output and "codec2-700C" in result.output
