#!/usr/bin/env python3
"""Usage: results.py EXP_DIR --config CONFIG --test-sets "test ..."   (one experiment's table)
          results.py EXP_DIR... --collect                            (join their RESULTS.md)

Stage 7 of the recipe: a Markdown table per test set and bitrate (nominal and actual kbps,
ideal entropy-coded kbps, PESQ-WB/NB, STOI, ESTOI, SI-SDR, mel distance), naming the
experiment directory, its config and the git commit.
"""

import argparse
import json
import os
import subprocess
from pathlib import Path

from codec.eval.report import markdown_table

METRICS = ("pesq_wb", "pesq_nb", "stoi", "estoi", "si_sdr", "mel_distance")


def git_commit() -> str:
    """The toolkit's commit (CODEC_ROOT's repository), marked when it has local changes."""
    root = os.environ.get("CODEC_ROOT", ".")
    done = subprocess.run(
        ["git", "-C", root, "describe", "--always", "--dirty"], capture_output=True, text=True
    )
    return done.stdout.strip() or "unknown (not a git checkout)"


def actual_kbps(tokens: Path, utt2dur: Path) -> float:
    seconds = sum(
        float(line.split()[1]) for line in utt2dur.read_text().splitlines() if line.strip()
    )
    bits = 8 * sum(p.stat().st_size for p in tokens.rglob("*.tok"))
    return bits / seconds / 1000


def table(exp: Path, test_set: str) -> str:
    rows = []
    for decode in sorted(exp.glob("decode_*kbps"), key=lambda p: float(p.name[7:-4])):
        scores = decode / test_set / "scores"
        if not (scores / "summary.json").exists():
            continue
        summary = json.loads((scores / "summary.json").read_text())
        tokens = json.loads((scores / "tokens.json").read_text())
        kbps = actual_kbps(decode / test_set / "tokens", Path("dump") / test_set / "utt2dur")
        means = [summary[m]["mean"] for m in METRICS]
        cells = ["n/a" if v is None else f"{v:.3f}" for v in means]
        rows.append(
            [
                decode.name[7:-4],
                f"{tokens['nominal_kbps']:.2f}",
                f"{kbps:.2f}",
                f"{tokens['ideal_kbps']:.2f}",
                *cells,
            ]
        )
    header = [
        "request kbps",
        "nominal kbps",
        "actual kbps",
        "ideal kbps",
        "PESQ-WB",
        "PESQ-NB",
        "STOI",
        "ESTOI",
        "SI-SDR",
        "mel dist",
    ]
    return markdown_table(header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("exps", nargs="+", type=Path)
    parser.add_argument("--config", default="")
    parser.add_argument("--test-sets", default="test")
    parser.add_argument("--collect", action="store_true")
    args = parser.parse_args()
    if args.collect:
        print("# Results\n\nOne section per experiment, written by stage 7 of the recipe.\n")
        for exp in args.exps:
            if (exp / "RESULTS.md").exists():
                print((exp / "RESULTS.md").read_text())
        return
    (exp,) = args.exps
    print(f"## {exp}\n\n- config: {args.config} (resolved: {exp}/config.yaml)")
    print(f"- git commit: {git_commit()}\n")
    for test_set in args.test_sets.split():
        print(f"### {test_set}\n\n{table(exp, test_set)}")


if __name__ == "__main__":
    main()
