"""Training-step time of one codec with different quantizer families, side by side.

Usage: python bench/step_time.py [--preset speech16k] [--families fsp,vp] [--steps 10]
                                 [--batch 8] [--seconds 1.0] [--threads N]

Every family gets the preset's encoder, decoder and stage count (only `model.quantizer.kind`
changes); the models take turns, one training step each (forward, L1 + quantizer losses,
backward, AdamW), so machine load hits all alike. Prints the median step time of each family
and its ratio to the first. Targets: VP at most 1.5x FSP on 2 CPU cores (the defaults);
`--preset egs/mini/conf/compare.yaml --families vq,fsq,fsp,vp` times the quantizer comparison's
codecs (egs/mini/RESULTS.md).
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
    parser.add_argument("--preset", default="speech16k", help="preset name or YAML file")
    parser.add_argument("--families", default="fsp,vp", help="comma-separated quantizer kinds")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=1.0, help="crop length")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    families = args.families.split(",")
    models = {
        kind: codec.build_model(args.preset, **{"model.quantizer.kind": kind}).train()
        for kind in families
    }
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
    medians = {kind: statistics.median(times[kind]) for kind in families}
    crop = f"batch {args.batch} x {args.seconds:.1f} s"
    print(f"{args.preset}: {args.threads} threads, {crop}, median of {args.steps} steps")
    first = families[0]
    for kind, median in medians.items():
        ratio = median / medians[first]
        print(f"{kind.upper():>4} step: {median:.3f} s   {ratio:.2f}x {first.upper()}")
    if "vp" in models:
        stats = models["vp"](wav).stats
        acceptance = statistics.mean(v for k, v in stats.items() if k.endswith("acceptance"))
        print(f"VP mean acceptance over stages: {acceptance:.2f}")


if __name__ == "__main__":
    main()
