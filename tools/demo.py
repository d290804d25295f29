"""Encode and decode a real speech sample at 1.5, 3 and 6 kbps with the default model; print
bitrate and quality next to Opus and Codec2 on the same sample.

Usage: python tools/demo.py [AUDIO] [--model NAME_OR_CKPT] [--out DIR]

The sample is a Canadian-French prompt whose speaker and language the default model never
heard in training (tests/data/README.md), so its figures are those of unseen speech.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np

import codec
from codec.audio import load_audio, save_audio
from codec.compress import decode_file, encode_file, stages_for_bitrate
from codec.eval.baselines import baselines
from codec.eval.metrics import score
from codec.eval.report import markdown_table
from codec.zoo import model_label

SAMPLE = Path(__file__).parents[1] / "tests" / "data" / "speech_fr.flac"
BITRATES = (1.5, 3.0, 6.0)
CLASSICAL = {("opus", "6kbps"), ("opus", "8kbps"), ("codec2", "3200")}


def row(
    name: str, kbps: float, ref: np.ndarray, hyp: np.ndarray, rate: int, note: str
) -> list[str]:
    v = score(ref, hyp, rate).values
    cells = [f"{v[m]:.2f}" if m in v else "n/a" for m in ("pesq_wb", "pesq_nb", "stoi", "estoi")]
    return [name, f"{kbps:.2f}", *cells, note]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio", nargs="?", type=Path, default=SAMPLE)
    parser.add_argument("--model", default="default", help="zoo name or checkpoint")
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="decoded WAVs go here")
    args = parser.parse_args()

    model, label = codec.load_model(args.model), model_label(args.model)
    print(f"model: {label}")
    ref, rate = load_audio(args.audio, model.sample_rate)
    ref = ref[0]
    seconds = len(ref) / rate
    args.out.mkdir(parents=True, exist_ok=True)
    latency = f"streaming latency {model.latency_ms:.0f} ms"
    print(f"input: {args.audio} ({seconds:.2f} s, {rate} Hz); {latency}")
    rows = []
    for n in [stages_for_bitrate(model, kbps) for kbps in BITRATES]:
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
            ["codec", "kbps (file size)", "PESQ-WB", "PESQ-NB", "STOI", "ESTOI", "output"], rows
        ),
        end="",
    )


if __name__ == "__main__":
    main()
