"""Where the time of `codec encode` + `codec decode` goes, with default flags, on one thread.

    python bench/profile_path.py AUDIO [--model default] [--ops 8]

Prints three Markdown tables:
1. Work of the network: multiply-accumulates per second of audio of the encoder (analysis
   transform included), the quantizer and the decoder (synthesis transform included), counted
   on 1 s of audio through the torch model's linear and convolution layers, next to the LRAC
   2025 challenge's Track 1 budget for low-resource codecs (700 MFLOPS in all, 2 FLOPs a MAC).
2. Stages of the default path, each command profiled in this process (cProfile): reading and
   resampling, building onnxruntime's sessions, running the graphs, entropy coding, writing,
   and the rest (argument parsing, framing, Python between the stages). Start-up (imports) is
   measured apart: a fresh interpreter importing the CLI.
3. Operators: onnxruntime's own profile of the encoder's and decoder's 50-frame graphs on the
   same audio, the `--ops` most expensive operator types of each.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from codec.eval.report import markdown_table  # noqa: E402

LRAC_MFLOPS = 700.0  # LRAC 2025 Track 1: encoder + decoder, at most 30 ms of latency
# (stage, substrings of a profiled function's "file:function" that belong to it), first match
STAGES = [
    ("read + resample", ("soundfile.py", "soxr", "codec/audio.py")),
    ("onnxruntime sessions built", ("initialize_session", "InferenceSession.__init__")),
    ("graphs run (the network)", ("pybind11_state.run>",)),
    ("entropy coding", ("codec/entropy.py", "bisect_right")),  # the rANS decoder searches
    ("token file framing", ("codec/tokens.py",)),
    ("writing", ("method 'write'",)),
]


def macs_per_second(model) -> dict[str, float]:
    """Multiply-accumulates per second of audio of each part of a torch `model`."""
    import torch
    from torch import nn

    counts: dict[str, float] = defaultdict(float)
    part = {"name": ""}

    def count(module, inputs, output) -> None:
        if isinstance(module, nn.Linear):
            rows = output.numel() // module.out_features
            counts[part["name"]] += rows * module.in_features * module.out_features
        elif isinstance(module, nn.Conv1d):
            per_output = module.in_channels // module.groups * module.kernel_size[0]
            counts[part["name"]] += output.numel() * per_output
        elif isinstance(module, nn.ConvTranspose1d):
            per_input = module.out_channels // module.groups * module.kernel_size[0]
            counts[part["name"]] += inputs[0].numel() * per_input

    hooks = [
        m.register_forward_hook(count)
        for m in model.modules()
        if isinstance(m, nn.Linear | nn.Conv1d | nn.ConvTranspose1d)
    ]
    audio = torch.zeros(1, 1, model.sample_rate)
    with torch.inference_mode():
        part["name"] = "encoder"
        latent = model.encoder(audio)
        part["name"] = "quantizer"
        codes = model.quantizer.encode(latent, model.num_stages)
        quantized = model.quantizer.decode(codes)
        part["name"] = "decoder"
        model.decoder(quantized)
    for hook in hooks:
        hook.remove()
    seconds = latent.shape[-1] * model.hop_length / model.sample_rate
    return {name: value / seconds for name, value in counts.items()}


def stage_times(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of each of STAGES (own time of the functions that belong to it), and the rest."""
    out = {name: 0.0 for name, _ in STAGES} | {"the rest": 0.0}
    for (file, line, function), (_, _, own, _, _) in stats.stats.items():
        where = f"{file}:{line}({function})>" if file != "~" else f"{function}>"
        stage = next((n for n, keys in STAGES if any(k in where for k in keys)), "the rest")
        out[stage] += own
    return out


def run_cli(args: list[str]) -> pstats.Stats:
    from codec.cli import app

    profile = cProfile.Profile()
    profile.enable()
    try:
        app(args)
    except SystemExit as done:
        if done.code:
            raise RuntimeError(f"codec {' '.join(args)} failed") from None
    finally:
        profile.disable()
    return pstats.Stats(profile)


def operator_times(directory: Path, audio: np.ndarray, tmp: Path, top: int) -> list[list]:
    """The most expensive operator types of the encoder's and decoder's 50-frame graphs."""
    import onnxruntime

    manifest = json.loads((directory / "manifest.json").read_text())
    frames = max(int(k) for k in manifest["graphs"])
    hop = manifest["hop_length"]
    rows = []
    codes = None
    for part in ("encoder", "decoder"):
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = 1, 1
        options.enable_profiling = True
        options.profile_file_prefix = str(tmp / part)
        graph = directory / manifest["graphs"][str(frames)][part]
        session = onnxruntime.InferenceSession(str(graph), options)
        states = {
            f"in.{s['name']}": np.zeros([1, *s["shape"][1:]], s.get("dtype", "float32"))
            for s in manifest[f"{part}_states"]
        }
        chunks = len(audio) // (frames * hop)
        out = []
        for i in range(chunks):
            if part == "encoder":
                chunk = audio[None, None, i * frames * hop : (i + 1) * frames * hop]
                feeds = {"audio": chunk.astype(np.float32)}
            else:
                stages = np.array(codes.shape[1], dtype=np.int64)
                feeds = {"codes": codes[:, :, i * frames : (i + 1) * frames], "stages": stages}
            result, *new = session.run(None, feeds | states)
            states = dict(zip(states, new, strict=True))
            out.append(result)
        if part == "encoder":
            codes = np.concatenate(out, axis=2)
        events = json.loads(Path(session.end_profiling()).read_text())
        by_type: dict[str, float] = defaultdict(float)
        for event in events:
            if event.get("cat") == "Node":
                by_type[event["args"].get("op_name", "?")] += event["dur"] / 1e6
        total = sum(by_type.values())
        for op, seconds in sorted(by_type.items(), key=lambda kv: -kv[1])[:top]:
            share = f"{100 * seconds / total:.0f}%"
            rows.append([part, op, f"{seconds:.3f}", share])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio", type=Path, help="a speech file (the longer, the steadier)")
    parser.add_argument("--model", default="default", help="zoo name or checkpoint")
    parser.add_argument("--ops", type=int, default=8, help="operator types shown per graph")
    args = parser.parse_args()
    from codec.audio import load_audio
    from codec.zoo import load_model, load_onnx

    model = load_model(args.model).eval()
    macs = macs_per_second(model)
    rows = [[n, f"{m / 1e6:.1f}", f"{2 * m / 1e6:.0f}"] for n, m in macs.items()]
    total = sum(macs.values())
    rows.append(["in all", f"{total / 1e6:.1f}", f"{2 * total / 1e6:.0f}"])
    rows.append(["LRAC 2025 Track 1 budget", f"{LRAC_MFLOPS / 2:.0f}", f"{LRAC_MFLOPS:.0f}"])
    print(f"## Network work per second of audio: {model.name or args.model}\n")
    print(markdown_table(["part", "MMAC/s", "MFLOPS"], rows))

    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import codec.cli"], check=True)
    startup = time.perf_counter() - started
    audio, rate = load_audio(args.audio, 16000)
    seconds = audio.shape[1] / rate
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tokens, decoded = str(tmp / "x.tok"), str(tmp / "x.wav")
        flags = ["--model", args.model]
        runs = {
            "encode": run_cli(["encode", str(args.audio), "-o", tokens, *flags]),
            "decode": run_cli(["decode", tokens, "-o", decoded, *flags]),
        }
        table = []
        times = {name: stage_times(stats) for name, stats in runs.items()}
        for stage in [*(n for n, _ in STAGES), "the rest"]:
            cells = [f"{times[name][stage]:.3f}" for name in runs]
            table.append([stage, *cells])
        table.append(["in all (profiled)", *(f"{sum(t.values()):.3f}" for t in times.values())])
        table.append(["start-up: a fresh interpreter importing the CLI", f"{startup:.3f}", ""])
        print(f"## The default path, stage by stage: {seconds:.0f} s of audio, one process\n")
        print(markdown_table(["stage", "encode s", "decode s"], table))
        print("## Operators of the 50-frame graphs (onnxruntime's profile, one thread)\n")
        directory = load_onnx(args.model).directory
        ops = operator_times(directory, audio.mean(axis=0), tmp, args.ops)
        print(markdown_table(["graph", "operator", "s", "share"], ops))


if __name__ == "__main__":
    main()
