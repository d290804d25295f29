"""The listening page of `codec bench`: `index.html` beside `bench.md`, with the rate-distortion
plot, the metric table, and for a few files the reference and every codec setting as audio
players labelled with bitrate and scores. Self-contained: relative links, FLAC audio (every
current browser plays it), so the folder opens from disk and can be zipped and sent."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import soundfile as sf

from codec.eval.bench import LABELS, Example, format_value, metric_table
from codec.eval.scoring import EVAL_RATE

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child, th:nth-child(2), td:nth-child(2) { text-align: left; }
tr.ours { background: #eef5ff; }
audio { height: 2em; vertical-align: middle; }
img { max-width: 100%; }
div.wide { overflow-x: auto; }
"""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


def _write_audio(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(audio, -1, 1), EVAL_RATE, format="FLAC", subtype="PCM_16")


def _table(header: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def write_listening_page(rows: list[dict], examples: list[Example], label: str, out: Path) -> Path:
    """Write `out/index.html` and `out/audio/` for `examples`; returns the page's path."""
    header, table = metric_table(rows)
    ours = ["ours" if r["codec"] == "codec" else "" for r in rows]
    names = list(rows[0]["stats"])
    shown = [n for n in ("pesq_wb", "stoi", "visqol", "dnsmos_ovrl", "wer") if n in names]
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(label)}: "
        f"listening page</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(label)} next to Opus and Codec2</h1>",
        "<p>Bitrates are measured from the files each codec wrote; scores are means over all "
        "files of the benchmark (bench.md has the same table, bench.json the 95% CIs).</p>",
        "<img src='rd.png' alt='rate-distortion plot'>",
        "<div class='wide'>"
        + _table(header, [[html.escape(c) for c in row] for row in table], ours)
        + "</div>",
    ]
    for index, example in enumerate(examples):
        folder = Path("audio") / f"{index:02d}_{_slug(example.name)}"
        _write_audio(out / folder / "reference.flac", example.reference)
        player = "<audio controls preload='metadata' src='{}'></audio>"
        cells = [
            ["reference", "", "", *["" for _ in shown], player.format(folder / "reference.flac")]
        ]
        classes = [""]
        for codec, setting, kbps, audio, scores in example.coded:
            path = folder / f"{_slug(codec)}_{_slug(setting)}.flac"
            _write_audio(out / path, audio)
            values = [format_value(n, scores.get(n, float("nan"))) for n in shown]
            cells.append([html.escape(codec), html.escape(setting), f"{kbps:.2f}", *values,
                          player.format(path)])  # fmt: skip
            classes.append("ours" if codec == "codec" else "")
        seconds = len(example.reference) / EVAL_RATE
        parts.append(f"<h2>{html.escape(example.name)} ({seconds:.1f} s)</h2>")
        head = ["codec", "setting", "kbps", *(LABELS[n] for n in shown), "listen"]
        parts.append(_table(head, cells, classes))
    parts.append("</body></html>")
    page = out / "index.html"
    page.write_text("\n".join(parts) + "\n")
    return page
