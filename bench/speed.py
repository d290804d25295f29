"""Speed of a codec preset: parameters, encode/decode real-time factor, offline and streaming.

Usage: python bench/speed.py [--preset speech16k] [--seconds 10] [--chunk-ms 20]

Real-time factor (RTF) = processing time / audio duration (lower is faster; 0.05 = 20x real
time). Measured on 1 thread and on all cores, with weight norm folded as for inference. An
untrained model runs exactly as fast as a trained one.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

import codec


def best_time(fn, repeats: int) -> float:
    """Best wall time of `repeats` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def streamed(model: codec.CodecModel, step, x: torch.Tensor, chunk: int) -> None:
    """Run `step` over `x` in chunks of `chunk` along the last axis, inside a stream."""
    with model.streaming(batch_size=1):
        for start in range(0, x.shape[-1], chunk):
            step(x[..., start : start + chunk])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="speech16k", help="preset name or YAML file")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--chunk-ms", type=float, default=20.0, help="streaming chunk length")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = codec.build_model(args.preset).eval()
    model.set_weight_norm(False)
    wav = 0.1 * torch.randn(1, 1, int(args.seconds * model.sample_rate))
    with torch.inference_mode():
        codes = model.encode(wav)
    chunk = round(args.chunk_ms / 1000 * model.sample_rate)
    frames_per_chunk = max(1, round(chunk / model.hop_length))

    params = sum(p.numel() for p in model.parameters())
    print(
        f"preset {args.preset}: {params / 1e6:.2f} M parameters, {model.num_stages} stages, "
        f"{model.bitrate() / 1000:.2f} kbps at full rate, latency {model.latency_ms:.0f} ms"
    )
    print(
        f"audio: {args.seconds:.0f} s; streaming chunks of {args.chunk_ms:.0f} ms; "
        f"best of {args.repeats}"
    )
    print("| threads | mode | encode RTF | decode RTF | encode+decode RTF |")
    print("|---|---|---|---|---|")
    for threads in sorted({1, os.cpu_count() or 1}):
        torch.set_num_threads(threads)
        with torch.inference_mode():
            runs = {
                "offline": (lambda: model.encode(wav), lambda: model.decode(codes)),
                "streaming": (
                    lambda: streamed(model, model.encode, wav, chunk),
                    lambda: streamed(model, model.decode, codes, frames_per_chunk),
                ),
            }
            for mode, (encode, decode) in runs.items():
                enc = best_time(encode, args.repeats) / args.seconds
                dec = best_time(decode, args.repeats) / args.seconds
                print(f"| {threads} | {mode} | {enc:.4f} | {dec:.4f} | {enc + dec:.4f} |")


if __name__ == "__main__":
    main()
