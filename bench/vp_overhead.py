"""Training-step time of a residual VP codec divided by the same codec with FSP stages.

Usage: python bench/vp_overhead.py [--steps 10] [--batch 8] [--seconds 1.0] [--threads N]

Both models (presets speech16k-vp and speech16k-fsp: same encoder/decoder, 12 stages, same
bitrate) take turns, one training step each (forward, backward, AdamW), so machine load hits
both alike. Target: VP at most 1.5x FSP on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

import codec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0, help="crop length")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    families = ("fsp", "vp")
    models = {k: codec.build_model(f"speech16k-{k}").train() for k in families}
    optims = {k: torch.optim.AdamW(m.parameters(), lr=3e-4) for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in families}
    samples = int(args.seconds * 16000)
    for step in range(args.steps + 1):  # step 0 warms up
        wav = 0.1 * torch.randn(args.batch, 1, samples)
        for kind in families:
            start = time.perf_counter()
            out = models[kind](wav)
            loss = (out.audio - wav).abs().mean() + sum(out.losses.values())
            optims[kind].zero_grad()
            loss.backward()
            optims[kind].step()
            if step:
                times[kind].append(time.perf_counter() - start)
    fsp, vp = (statistics.median(times[k]) for k in families)
    vp_stats = models["vp"](wav).stats
    acceptance = statistics.mean(v for k, v in vp_stats.items() if k.endswith("acceptance"))
    crop = f"batch {args.batch} x {args.seconds:.1f} s"
    print(f"{args.threads} threads, {crop}, median of {args.steps} steps")
    print(f"FSP step: {fsp:.3f} s   VP step: {vp:.3f} s   VP / FSP: {vp / fsp:.2f}x")
    print(f"VP mean acceptance over stages: {acceptance:.2f}")


if __name__ == "__main__":
    main()
