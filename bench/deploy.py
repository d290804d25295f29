"""Deployment figures: the torch-free ONNX runtime against torch and Opus, and quality under
packet loss against Opus with its own concealment. Prints Markdown tables.

    python bench/deploy.py HELD_OUT_DIR [--long-seconds 204] [--repeats 5] [--files 25]
                           [--model default] [--no-loss]

1. Speed, one CPU (`taskset -c 0`), whole processes, start-up included, medians of --repeats
   runs: `codec encode` + `codec decode` of one long file (the held-out files joined) and of
   its first second, with default flags, --backend torch and --backend onnx, next to opusenc +
   opusdec at 6 kbps in the same run, with peak memory; and the commands that code nothing
   (`--help`, `models`, `info`, an argument error) against Opus's time for the long file.
2. Live path, one thread: compute per 20 ms frame (encode + decode one frame at a time).
3. Packet loss 0/5/10/20%: our live stream at 6 kbps (12 stages, 20 ms packets, lost packets
   concealed) and Opus 6 kbps (20 ms frames, `opusdec --packet-loss`), PESQ-WB, STOI, PLCMOS.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codec.audio import find_files, load_audio  # noqa: E402
from codec.compress import as_coder  # noqa: E402
from codec.eval.metrics import score  # noqa: E402
from codec.eval.report import markdown_table  # noqa: E402
from codec.live import decode_packets, read_packets, read_stream_header  # noqa: E402

LOSS_RATES = (0.0, 0.05, 0.10, 0.20)
RATE = 16000


def timed(command: list[str], pin: bool = True) -> tuple[float, float]:
    """Wall seconds and peak memory (MB, GNU time's maximum resident set) of one run of
    `command`, on CPU 0 with `pin`. GNU time forks the command itself: a child forked from this
    large process would report this process's memory as its own peak."""
    pinned = (["taskset", "-c", "0"] if pin else []) + command
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "peak-kb %M", *pinned],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-500:]}")
    peak = next(line for line in done.stderr.splitlines() if line.startswith("peak-kb "))
    return seconds, int(peak.split()[1]) / 1024


def median_run(commands: list[list[str]], repeats: int) -> tuple[float, float]:
    """Median over `repeats` of the summed seconds of `commands` run one after the other, and
    the largest peak memory of any of them."""
    totals, peak = [], 0.0
    for _ in range(repeats):
        runs = [timed(command) for command in commands]
        totals.append(sum(seconds for seconds, _ in runs))
        peak = max(peak, *(memory for _, memory in runs))
    return float(np.median(totals)), peak


def speed(
    wavs: list[np.ndarray], long_seconds: float, model: str, onnx_dir: Path, tmp: Path,
    repeats: int,
) -> tuple[list[list], list[list]]:  # fmt: skip
    """The coding table (a long file and a 1 s file, encode + decode, each way of running
    `codec` against opusenc + opusdec at 6 kbps) and the start-up table (commands that code
    nothing), both as ratios to Opus's time for the long file."""
    audio = np.concatenate(wavs)
    samples = int(long_seconds * RATE)
    audio = np.tile(audio, int(np.ceil(samples / len(audio))))[:samples]
    sf.write(tmp / "long.wav", audio, RATE, subtype="PCM_16")
    sf.write(tmp / "short.wav", audio[:RATE], RATE, subtype="PCM_16")
    codec = [sys.executable, "-m", "codec"]

    def roundtrip(name: str, flags: list[str]) -> list[list[str]]:
        return [
            [*codec, "encode", str(tmp / f"{name}.wav"), "-o", str(tmp / f"{name}.tok"), *flags],
            [*codec, "decode", str(tmp / f"{name}.tok"), "-o", str(tmp / f"{name}.out.wav"),
             *flags],
        ]  # fmt: skip

    def opus(name: str) -> list[list[str]]:
        return [
            ["opusenc", "--quiet", "--bitrate", "6", "--framesize", "20", str(tmp / f"{name}.wav"),
             str(tmp / f"{name}.opus")],
            ["opusdec", "--quiet", "--rate", "16000", str(tmp / f"{name}.opus"),
             str(tmp / f"{name}.opus.wav")],
        ]  # fmt: skip

    ways = {
        "codec, default flags": ["--model", model, "--force"],
        "codec --backend torch": ["--backend", "torch", "--model", model, "--force"],
        "codec --backend onnx (exported folder)": [
            "--backend",
            "onnx",
            "--model",
            str(onnx_dir),
            "--force",
        ],  # fmt: skip
    }
    opus_long, opus_memory = median_run(opus("long"), repeats)
    opus_short, _ = median_run(opus("short"), repeats)
    coding = []
    for name, flags in ways.items():
        long, memory = median_run(roundtrip("long", flags), repeats)
        short, _ = median_run(roundtrip("short", flags), repeats)
        coding.append([name, f"{long:.2f}", f"{long / opus_long:.2f}x", f"{short:.2f}",
                       f"{short / opus_long:.2f}x", f"{memory:.0f}"])  # fmt: skip
    coding.append(["opusenc + opusdec, 6 kbps", f"{opus_long:.2f}", "1.00x", f"{opus_short:.2f}",
                   f"{opus_short / opus_long:.2f}x", f"{opus_memory:.0f}"])  # fmt: skip
    default = ways["codec, default flags"][:2]
    commands = {
        "codec --help": [*codec, "--help"],
        "codec models": [*codec, "models"],
        "codec info FILE": [*codec, "info", str(tmp / "long.tok")],
        "codec encode (an argument error)": [*codec, "encode", str(tmp / "none.wav"), *default],
    }
    startup = []
    for name, command in commands.items():
        if name.endswith("error)"):
            seconds = float(np.median([_failing(command) for _ in range(repeats)]))
        else:
            seconds, _ = median_run([command], repeats)
        startup.append([name, f"{seconds:.2f}", f"{seconds / opus_long:.2f}x"])
    return coding, startup


def _failing(command: list[str]) -> float:
    """Seconds of a command that is meant to fail (an argument error), on CPU 0."""
    start = time.perf_counter()
    done = subprocess.run(["taskset", "-c", "0", *command], capture_output=True)
    if done.returncode == 0:
        raise RuntimeError(f"{' '.join(command)} was meant to fail")
    return time.perf_counter() - start


def per_frame(model, runtime, frames: int = 500) -> list[list]:
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal((1, frames * 320))).astype(np.float32)
    rows = []
    for name, coder in (("torch", as_coder(model)), ("onnx", runtime)):
        with coder.streaming(batch_size=1) as stream:
            for i in range(20):  # warm-up
                stream.decode(stream.encode(audio[:, i * 320 : (i + 1) * 320]))
            start = time.perf_counter()
            for i in range(frames):
                stream.decode(stream.encode(audio[:, i * 320 : (i + 1) * 320]))
            ms = 1000 * (time.perf_counter() - start) / frames
        rows.append([name, f"{ms:.2f}", f"{model.latency_ms + ms:.1f}"])
    return rows


def live_roundtrip(runtime, wav: np.ndarray, loss: float, seed: int) -> np.ndarray:
    """Our live path at 12 stages, 20 ms packets, through the stream format itself."""
    from codec.live import LiveEncoder

    pcm = (np.round(np.clip(wav, -1, 1) * 32767) / 32768).astype(np.float32)
    with runtime.streaming(batch_size=1) as stream:
        live = LiveEncoder(runtime, stream, runtime.name, runtime.num_stages, 1)
        data = io.BytesIO(live.header_bytes() + b"".join(live.push(pcm, last=True)))
    header = read_stream_header(data)
    drop = np.random.default_rng(seed) if loss else None
    with runtime.streaming(batch_size=1) as stream:
        records = read_packets(data, header)
        out = [a for a, _ in decode_packets(records, stream, header, drop, loss)]
    return np.concatenate(out)[: len(wav)]


def opus_roundtrip(wav: np.ndarray, loss: float, tmp: Path) -> np.ndarray:
    sf.write(tmp / "in.wav", wav, RATE, subtype="PCM_16")
    subprocess.run(["opusenc", "--quiet", "--bitrate", "6", "--framesize", "20", "--set-ctl-int",
                    "4000=2048", str(tmp / "in.wav"), str(tmp / "x.opus")], check=True)  # fmt: skip
    subprocess.run(["opusdec", "--quiet", "--rate", "16000", "--packet-loss", f"{100 * loss:g}",
                    str(tmp / "x.opus"), str(tmp / "out.wav")], check=True)  # fmt: skip
    return sf.read(tmp / "out.wav", dtype="float32")[0]


def packet_loss(runtime, wavs: list[np.ndarray], tmp: Path) -> list[list]:
    metrics = ("pesq_wb", "stoi", "plcmos")
    rows = []
    for loss in LOSS_RATES:
        for name in ("codec 12 stages (6 kbps)", "opus 6 kbps"):
            values = {m: [] for m in metrics}
            for i, wav in enumerate(wavs):
                if name.startswith("codec"):
                    out = live_roundtrip(runtime, wav, loss, seed=i)
                else:
                    out = opus_roundtrip(wav, loss, tmp)
                found = score(wav, out, RATE, metrics=metrics).values
                for m in metrics:
                    values[m].append(found.get(m, np.nan))
            rows.append([f"{100 * loss:.0f}%", name]
                        + [f"{np.nanmean(values[m]):.3f}" for m in metrics])  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("held_out", type=Path)
    parser.add_argument("--long-seconds", type=float, default=204.0)
    parser.add_argument("--repeats", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--files", type=int, default=25, help="files for the packet-loss table")
    parser.add_argument("--model", default="default", help="zoo name or checkpoint")
    parser.add_argument("--no-loss", action="store_true", help="speed tables only")
    args = parser.parse_args()
    from codec.zoo import load_model, load_onnx

    files = find_files(args.held_out)
    wavs = [load_audio(p, RATE)[0].mean(axis=0) for p in files]
    runtime = load_onnx(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        coding, startup = speed(
            wavs, args.long_seconds, args.model, runtime.directory, Path(tmp), args.repeats
        )
        print(f"## One CPU, whole processes, start-up included (medians of {args.repeats})\n")
        header = [
            "encode + decode", f"{args.long_seconds:.0f} s file, s", "vs Opus",
            "1 s file, s", "vs Opus's long file", "peak MB",
        ]  # fmt: skip
        print(markdown_table(header, coding))
        print("## Commands that code nothing\n")
        print(markdown_table(["command", "s", "vs Opus's long file"], startup))
        print("## Live path, one thread, one 20 ms frame at a time\n")
        model = load_model(args.model)
        rows = per_frame(model, runtime)
        latency = f"latency ms ({model.latency_ms:g} + compute)"
        print(markdown_table(["backend", "compute ms per frame", latency], rows))
        if args.no_loss:
            return
        picked = wavs[:: max(1, len(wavs) // args.files)][: args.files]
        seconds = sum(len(w) for w in picked) / RATE
        print(f"## Random packet loss, {len(picked)} held-out files ({seconds:.0f} s)\n")
        header = ["loss", "codec", "PESQ-WB", "STOI", "PLCMOS"]
        print(markdown_table(header, packet_loss(runtime, picked, Path(tmp))))


if __name__ == "__main__":
    main()
