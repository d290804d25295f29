"""Encode and decode a real speech sample at each bitrate; print size, bitrate and quality,
next to Opus and Codec2 on the same sample.

Usage: python tools/demo.py [AUDIO] [--model PRESET_OR_CKPT] [--out DIR]

Until a trained default model ships, the model is the untrained `speech16k` preset: the
figures show that the whole path runs (tokens, bitrate, streaming latency), not its quality.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
import torch

import codec
from codec.audio import load_audio, save_audio
from codec.compress import decode_file, encode_file
from codec.eval.baselines import baselines
from codec.eval.metrics import score
from codec.eval.report import markdown_table

SAMPLE = Path(__file__).parents[1] / "tests" / "data" / "speech_en.flac"
CLASSICAL = {("opus", "6kbps"), ("opus", "8kbps"), ("codec2", "3200")}


def row(
    name: str, kbps: float, ref: np.ndarray, hyp: np.ndarray, rate: int, note: str
) -> list[str]:
    v = score(ref, hyp, rate).values
    cells = [f"{v[m]:.2f}" if m in v else "n/a" for m in ("pesq_wb", "stoi", "si_sdr")]
    return [name, f"{kbps:.2f}", *cells, note]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio", nargs="?", type=Path, default=SAMPLE)
    parser.add_argument("--model", default="speech16k", help="preset (untrained) or checkpoint")
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="decoded WAVs go here")
    args = parser.parse_args()

    if Path(args.model).is_file():
        model, label = codec.load_model(args.model), Path(args.model).name
    else:
        torch.manual_seed(0)
        model, label = codec.build_model(args.model).eval(), args.model
        print(
            f"note: {args.model} is an UNTRAINED model (no trained default model ships yet); "
            "its quality figures are those of random weights."
        )
    ref, rate = load_audio(args.audio, model.sample_rate)
    ref = ref[0]
    seconds = len(ref) / rate
    args.out.mkdir(parents=True, exist_ok=True)
    latency = f"streaming latency {model.latency_ms:.0f} ms"
    print(f"input: {args.audio} ({seconds:.2f} s, {rate} Hz); {latency}")
    rows = []
    for n in sorted(
        {max(1, model.num_stages // 4), max(1, model.num_stages // 2), model.num_stages}
    ):
        tokens, decoded = io.BytesIO(), io.BytesIO()
        encode_file(model, label, args.audio, tokens, n)
        tokens.seek(0)
        decode_file(tokens, decoded, lambda header: model)
        decoded.seek(0)
        hyp = load_audio(decoded, rate)[0][0]
        out = args.out / f"{args.audio.stem}_{n}stages.wav"
        save_audio(out, hyp[None], rate)
        size = len(tokens.getvalue())
        rows.append(row(f"codec, {n} stages", 8 * size / seconds / 1000, ref, hyp, rate, str(out)))
    for baseline in baselines():
        if (baseline.codec, baseline.setting) in CLASSICAL:
            hyp, size = baseline.code(ref, rate)
            rows.append(
                row(
                    f"{baseline.codec} {baseline.setting}",
                    8 * size / seconds / 1000,
                    ref,
                    hyp,
                    rate,
                    "",
                )
            )
    print(
        markdown_table(
            ["codec", "kbps (file size)", "PESQ-WB", "STOI", "SI-SDR dB", "output"], rows
        ),
        end="",
    )


if __name__ == "__main__":
    main()
