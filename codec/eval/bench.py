"""`codec bench`: our model at each bitrate next to Opus and Codec2, on the same audio, in one run.

Every codec encodes and decodes every file; outputs are delay-compensated and scored with the
same metrics; bitrates come from the sizes of the files each codec wrote; speed is measured in
the same run. Results: `bench.json`, `bench.md` and a rate-distortion plot `rd.png`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from codec.audio import AUDIO_SUFFIXES, find_files, load_audio, save_audio
from codec.compress import decode_file, encode_file
from codec.eval.baselines import Baseline, baselines, require, tool_versions, tools_for
from codec.eval.metrics import BENCH_METRICS, check_available, score, value_names
from codec.eval.report import markdown_table
from codec.eval.scoring import EVAL_RATE, _nan_to_none, summary_stats
from codec.model import CodecModel
from codec.tokens import TokenReader, token_file_bytes

LABELS = {"pesq_wb": "PESQ-WB", "pesq_nb": "PESQ-NB", "stoi": "STOI", "estoi": "ESTOI",
          "si_sdr": "SI-SDR dB", "mel_distance": "mel", "f0_rmse_cents": "F0 cents",
          "voicing_error": "VDE", "dnsmos_sig": "DNSMOS SIG", "dnsmos_bak": "DNSMOS BAK",
          "dnsmos_ovrl": "DNSMOS OVRL", "dnsmos_p808": "P.808", "plcmos": "PLCMOS",
          "visqol": "ViSQOL", "speaker_similarity": "speaker sim", "wer": "WER",
          "wer_ref": "WER ref"}  # fmt: skip


@dataclass
class Example:
    """One file kept for the listening page: its reference and what each setting made of it."""

    name: str
    reference: np.ndarray
    coded: list[tuple[str, str, float, np.ndarray, dict]]  # codec, setting, kbps, audio, scores


@dataclass(frozen=True)
class BenchFile:
    """One benchmark file: its name, path, and transcript (for WER) when there is one."""

    name: str
    path: Path
    text: str | None = None


@dataclass(frozen=True)
class Setting:
    """One row of the bench: our model with `stages` stages, or a classical `baseline`."""

    codec: str
    setting: str
    stages: int | None = None
    baseline: Baseline | None = None


@dataclass
class Coded:
    """One file through one setting: bytes stored, seconds taken to encode and decode, the
    scores, and (for the listening page) the decoded audio at EVAL_RATE; for our
    entropy-coded files also the bytes the same codes take fixed-rate (format version 2)."""

    size: int
    seconds: float
    scores: dict
    scoring_seconds: dict  # metric -> seconds it took
    fixed_rate_size: int | None = None
    audio: np.ndarray | None = None


@dataclass
class BenchResult:
    """What `codec bench` measured: one row per setting, our model's speed, the listening
    page's examples, and how many of the files had a transcript (for WER)."""

    rows: list[dict]
    speed: dict
    examples: list[Example]
    files: int
    transcribed: int
    tools: dict[str, str]  # baseline -> the version that ran

    def wer_source(self) -> str:
        """How WER was scored, for the report."""
        if self.transcribed == self.files:
            return "WER is scored against the transcripts of the data directory's `text`."
        recognised = "the recognizer's output on the reference"
        if not self.transcribed:
            return f"WER is scored against {recognised} (no transcripts given)."
        return (
            f"WER is scored against the transcripts for {self.transcribed} of {self.files} "
            f"files, against {recognised} for the rest."
        )


_worker: dict = {}  # this process's model, its label and the metrics (set by _start_worker)


def _start_worker(
    model: CodecModel | str, label: str, metrics: tuple[str, ...], threads: int = 0
) -> None:
    """Set up a process to bench files: `model` or its zoo name or checkpoint path."""
    if threads:
        torch.set_num_threads(threads)
    if not isinstance(model, CodecModel):
        from codec.zoo import load_model

        model = load_model(model).eval()
    _worker.update(model=model, label=label, metrics=metrics)


def _bench_file(settings: list[Setting], wav: np.ndarray, text: str | None, keep: bool) -> list:
    """Every setting on one file (so the reference's own analyses are computed once per
    process): a `Coded` for each, with the audio when `keep`."""
    out = []
    for setting in settings:
        start = time.perf_counter()
        if setting.baseline is not None:
            audio, size = setting.baseline.code(wav, EVAL_RATE)
            data = None
        else:
            data, audio = _code_ours(_worker["model"], _worker["label"], setting.stages, wav)
            size = len(data)
        seconds = time.perf_counter() - start
        scored = score(wav, audio, EVAL_RATE, metrics=_worker["metrics"], text=text)
        fixed = fixed_rate_size(data, _worker["model"]) if data is not None else None
        out.append(
            Coded(size, seconds, scored.values, scored.seconds, fixed, audio if keep else None)
        )
    return out


def _code_ours(model: CodecModel, label: str, n_stages: int, wav: np.ndarray):
    """The token file's bytes and the decoded audio, through the same code as `codec encode`
    and `codec decode`."""
    source, tokens, audio = io.BytesIO(), io.BytesIO(), io.BytesIO()
    save_audio_to(source, wav)
    encode_file(model, label, source, tokens, n_stages)
    tokens.seek(0)
    decode_file(tokens, audio, lambda header: model)
    audio.seek(0)
    decoded, _ = load_audio(audio)
    return tokens.getvalue(), decoded[0]


def fixed_rate_size(data: bytes, model: CodecModel) -> int:
    """Bytes of the version-2 (fixed-rate) file holding the same codes as token file `data`."""
    reader = TokenReader(io.BytesIO(data), entropy=model.entropy)
    codes = reader.read_all()
    fixed = dataclasses.replace(reader.header, entropy_hash=None)
    return len(token_file_bytes(fixed, codes, reader.num_samples))


def save_audio_to(stream: io.BytesIO, wav: np.ndarray) -> None:
    import soundfile as sf

    sf.write(stream, wav, EVAL_RATE, format="WAV", subtype="FLOAT")
    stream.seek(0)


def bench_files(path: Path) -> list[BenchFile]:
    """The files of a directory of audio, or of a Kaldi data directory or wav.scp, whose
    `text` file beside it (when there is one) gives the transcripts."""
    from codec.data.kaldi import read_text, read_wav_scp, text_beside

    scp = path / "wav.scp" if path.is_dir() else path
    if scp.is_file() and scp.suffix == ".scp":
        text = text_beside(scp)
        texts = read_text(text) if text is not None else {}
        return [BenchFile(k, p, texts.get(k)) for k, p in read_wav_scp(scp).items()]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: give a directory of audio, a data directory or wav.scp")
    files = find_files(path)
    if not files:
        raise FileNotFoundError(f"{path} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
    return [BenchFile(str(p.relative_to(path).with_suffix("")), p) for p in files]


def _rows(
    settings: list[Setting], wavs: list[np.ndarray], results: list[list[Coded]], metrics
) -> list[dict]:
    """One row per setting: means over files (their 95% CI and count under `stats`), kbps over
    all files, RTF."""
    duration = sum(len(w) for w in wavs) / EVAL_RATE
    rows = []
    for i, setting in enumerate(settings):
        coded = [file_results[i] for file_results in results]
        bits = 8 * sum(c.size for c in coded)
        fixed_bits = 8 * sum(c.fixed_rate_size or c.size for c in coded)
        row = {"codec": setting.codec, "setting": setting.setting, "kbps": bits / duration / 1000}
        row["fixed_rate_kbps"] = fixed_bits / duration / 1000
        row["stats"] = {}
        for name in value_names(metrics):
            row["stats"][name] = summary_stats([c.scores.get(name, math.nan) for c in coded])
            row[name] = row["stats"][name]["mean"]
        row["rtf"] = sum(c.seconds for c in coded) / duration
        rows.append(row)
    return rows


def measure_speed(model: CodecModel, wavs: list[np.ndarray]) -> dict:
    """Our model's encode/decode real-time factor on 1 thread and on all cores (offline, all
    stages, weight norm folded), and the streaming latency for 20 ms chunks."""
    audio = torch.from_numpy(np.concatenate(wavs)).float().view(1, 1, -1)
    seconds = audio.shape[-1] / model.sample_rate
    speed: dict = {}
    before = torch.get_num_threads()
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            start = time.perf_counter()
            codes = model.encode(audio)
            middle = time.perf_counter()
            model.decode(codes)
            end = time.perf_counter()
        speed[f"{threads}_threads"] = {
            "encode_rtf": (middle - start) / seconds,
            "decode_rtf": (end - middle) / seconds,
        }
    torch.set_num_threads(before)
    hop = model.hop_length
    chunks = audio[..., : min(audio.shape[-1] // hop, 100) * hop].split(hop, dim=-1)
    with torch.inference_mode(), model.streaming(batch_size=1):
        start = time.perf_counter()
        for chunk in chunks:
            model.decode(model.encode(chunk))
        per_chunk_ms = 1000 * (time.perf_counter() - start) / len(chunks)
    speed["streaming"] = {
        "algorithmic_ms": model.latency_ms,
        "compute_per_chunk_ms": per_chunk_ms,
        "latency_ms": model.latency_ms + per_chunk_ms,
    }
    return speed


def measure_command_speed(reference: str, wavs: list[np.ndarray], min_seconds: float) -> dict:
    """`codec encode` then `codec decode` of one long file (the bench audio repeated to at least
    `min_seconds`), each a fresh process pinned to one CPU: wall time, start-up included."""
    audio = np.concatenate(wavs)
    audio = np.tile(audio, math.ceil(min_seconds * EVAL_RATE / len(audio)))
    seconds = len(audio) / EVAL_RATE
    command = [sys.executable, "-m", "codec"]
    pin = (
        (lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}))
        if hasattr(os, "sched_setaffinity")
        else None
    )
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        wav, tok, out = (Path(tmp) / name for name in ("long.wav", "long.tok", "long.out.wav"))
        save_audio(wav, audio[None], EVAL_RATE)
        for flags, key in (([], ""), (["--fixed-rate"], "fixed_rate_")):
            for step, args in (("encode", [wav, "-o", tok, *flags]), ("decode", [tok, "-o", out])):
                start = time.perf_counter()
                subprocess.run(
                    [*command, step, *map(str, args), "--model", reference, "--force"],
                    check=True,
                    capture_output=True,
                    preexec_fn=pin,
                )
                times[key + step] = time.perf_counter() - start
    return {
        "audio_seconds": seconds,
        "encode_seconds": times["encode"],
        "decode_seconds": times["decode"],
        "rtf": (times["encode"] + times["decode"]) / seconds,
        "fixed_rate_rtf": (times["fixed_rate_encode"] + times["fixed_rate_decode"]) / seconds,
    }


def run_bench(
    source: Path,
    model: CodecModel,
    label: str,
    stages: list[int] | None = None,
    progress: Callable[[int], Callable[[int], None]] | None = None,
    reference: str | None = None,
    command_seconds: float = 600.0,
    metrics: tuple[str, ...] = BENCH_METRICS,
    listen: int = 0,
    jobs: int = 1,
    classical: list[Baseline] | None = None,
) -> BenchResult:
    """Rows for our model at each number of `stages` (all by default) and each `classical`
    baseline (all by default), the speed figures, and the first `listen` files as examples for
    a listening page.

    `source`: see `bench_files`. With `reference` (zoo name or checkpoint path of `model`),
    files are coded and scored in `jobs` worker processes (one torch thread each, each loading
    the model from `reference`), and the `codec` command is also timed on one CPU over a file
    of at least `command_seconds`. `progress(total)` returns a tick taking how many codings
    were scored."""
    classical = baselines() if classical is None else classical
    require(*tools_for(classical))
    check_available(metrics)
    files = bench_files(source)
    wavs = [load_audio(f.path, EVAL_RATE)[0].mean(axis=0) for f in files]
    stages = stages or list(range(1, model.num_stages + 1))
    settings = [Setting("codec", f"{n} stages", stages=n) for n in stages]
    settings += [Setting(b.codec, b.setting, baseline=b) for b in classical]
    tick = progress(len(settings) * len(wavs)) if progress else (lambda n: None)
    tasks = [
        (settings, w, f.text, i < listen) for i, (f, w) in enumerate(zip(files, wavs, strict=True))
    ]
    started = time.perf_counter()
    if jobs <= 1 or reference is None:
        jobs = 1
        _start_worker(model, label, metrics)
        results = []
        for task in tasks:
            results.append(_bench_file(*task))
            tick(len(settings))
    else:
        context = get_context("spawn")
        start = (reference, label, metrics, 1)
        with ProcessPoolExecutor(jobs, context, initializer=_start_worker, initargs=start) as pool:
            futures = [pool.submit(_bench_file, *task) for task in tasks]
            results = []
            for future in futures:
                results.append(future.result())
                tick(len(settings))
    coding_seconds = time.perf_counter() - started
    rows = _rows(settings, wavs, results, metrics)
    examples = [
        Example(f.name, wav, [
            (s.codec, s.setting, 8 * c.size / (len(wav) / EVAL_RATE) / 1000, c.audio, c.scores)
            for s, c in zip(settings, coded, strict=True)
        ])
        for f, wav, coded in zip(files[:listen], wavs, results, strict=False)
    ]  # fmt: skip
    speed = measure_speed(model, wavs)
    if reference is not None:
        speed["command_1_cpu"] = measure_command_speed(reference, wavs, command_seconds)
    latency = {b.setting: b.algorithmic_latency_ms for b in classical}
    for row in rows:
        frame_ms = latency.get(row["setting"], model.latency_ms)
        row["latency_ms"] = frame_ms + row["rtf"] * frame_ms
    transcribed = sum(f.text is not None for f in files)
    speed["coding_and_scoring"] = {"seconds": coding_seconds, "jobs": jobs}
    speed["scoring_seconds"] = {
        metric: sum(c.scoring_seconds.get(metric, 0.0) for coded in results for c in coded)
        for metric in metrics
    }
    tools = tool_versions({b.codec for b in classical})
    return BenchResult(rows, speed, examples, len(files), transcribed, tools)


def metric_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the per-setting table: bitrates, each metric's mean, speed."""
    names = list(rows[0]["stats"])
    header = ["codec", "setting", "kbps", "fixed-rate kbps", *(LABELS[n] for n in names)]
    table = [
        [r["codec"], r["setting"], f"{r['kbps']:.2f}", f"{r['fixed_rate_kbps']:.2f}"]
        + [format_value(n, r[n]) for n in names]
        + [f"{r['rtf']:.3f}", f"{r['latency_ms']:.1f}"]
        for r in rows
    ]
    return [*header, "RTF", "latency ms"], table


def format_value(name: str, value: float) -> str:
    if math.isnan(value):
        return "n/a"
    digits = {"si_sdr": 1, "f0_rmse_cents": 0, "stoi": 3, "estoi": 3, "speaker_similarity": 3}
    return f"{value:.{digits.get(name, 2)}f}"


def baseline_sentence(tools: dict[str, str]) -> str:
    """Which versions of the classical codecs ran, and how, for the report."""
    said = []
    if "opus" in tools:
        said.append(
            f"{tools['opus']}, decoded by opusdec at 16 kHz with its default settings (libopus "
            "before 1.5 has no decoder-side enhancement)"
        )
    if "codec2" in tools:
        said.append(tools["codec2"])
    return f"Baselines: {'; '.join(said)}."


def bench_markdown(result: BenchResult, label: str) -> str:
    rows, speed = result.rows, result.speed
    header, table = metric_table(rows)
    threads = [
        [key.split("_")[0], f"{v['encode_rtf']:.4f}", f"{v['decode_rtf']:.4f}"]
        for key, v in speed.items()
        if key.endswith("_threads")
    ]
    s = speed["streaming"]
    command = speed.get("command_1_cpu")
    command_line = (
        f"`codec encode` + `codec decode` of a {command['audio_seconds']:.0f} s file, one CPU, "
        f"process start-up included: {command['encode_seconds']:.1f} s + "
        f"{command['decode_seconds']:.1f} s, RTF {command['rtf']:.4f} (fixed-rate files: RTF "
        f"{command['fixed_rate_rtf']:.4f})."
        if command
        else ""
    )
    return (
        "\n".join(
            [
                f"# Benchmark: {label} vs Opus and Codec2",
                "",
                "kbps: from the sizes of the files each codec wrote (container headers included);",
                "ours as `codec encode` writes them (each file entropy-coded or fixed-rate,",
                "whichever is smaller), and fixed-rate kbps is what the same codes take in",
                "fixed-rate files (`--fixed-rate`; the same as kbps for the other codecs).",
                "RTF: encode+decode time / audio duration (classical codecs: their command-line",
                "tools, process start included). Latency: algorithmic + compute for one frame.",
                "",
                markdown_table(header, table),
                *([result.wer_source(), ""] if "wer" in rows[0]["stats"] else []),
                *([baseline_sentence(result.tools), ""] if result.tools else []),
                "## Our model's speed (offline, all stages)",
                "",
                markdown_table(["threads", "encode RTF", "decode RTF"], threads),
                f"Streaming, one frame at a time: algorithmic latency {s['algorithmic_ms']:.1f} ms"
                f" + compute {s['compute_per_chunk_ms']:.2f} ms per chunk"
                f" = {s['latency_ms']:.1f} ms.",
                "",
                command_line,
                "",
                f"Coding and scoring took {speed['coding_and_scoring']['seconds'] / 60:.1f} "
                f"minutes in {speed['coding_and_scoring']['jobs']} processes; scoring time "
                "by metric, all files and settings (seconds of one process): "
                + ", ".join(
                    f"{LABELS.get(m, m)} {t:.0f}"
                    for m, t in sorted(speed["scoring_seconds"].items(), key=lambda kv: -kv[1])
                )
                + ".",
            ]
        )
        + "\n"
    )


def plot_rate_distortion(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows[0]["stats"])
    shown = [n for n in ("pesq_wb", "stoi", "visqol", "dnsmos_ovrl") if n in names] or names
    shown = (shown + names)[:2]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric in zip(axes, shown, strict=False):
        title = LABELS[metric]
        for codec in dict.fromkeys(r["codec"] for r in rows):
            mine = [r for r in rows if r["codec"] == codec]
            points = sorted((r["kbps"], r[metric]) for r in mine)
            line = ax.plot(*zip(*points, strict=True), marker="o", label=codec)[0]
            if any(r["fixed_rate_kbps"] > r["kbps"] for r in mine):
                fixed = sorted((r["fixed_rate_kbps"], r[metric]) for r in mine)
                ax.plot(*zip(*fixed, strict=True), marker="o", linestyle=":", mfc="none",
                        color=line.get_color(), label=f"{codec}, fixed-rate")  # fmt: skip
        ax.set_xlabel("kbps (from file sizes)")
        ax.set_ylabel(title)
        ax.set_xscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("Rate-distortion")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_bench(result: BenchResult, label: str, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(_nan_to_none(result.rows), indent=2) + "\n")
    (out / "speed.json").write_text(json.dumps(result.speed, indent=2) + "\n")
    (out / "bench.md").write_text(bench_markdown(result, label))
    plot_rate_distortion(result.rows, out / "rd.png")
