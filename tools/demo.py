"""Encode and decode a real speech sample at each bitrate; print size, bitrate and quality.

Usage: python tools/demo.py [AUDIO] [--model PRESET_OR_CKPT] [--out DIR]

Until a trained default model ships, the model is the untrained `speech16k` preset: the
figures show that the whole path runs (tokens, bitrate, streaming latency), not its quality.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import codec
from codec.audio import load_audio, save_audio
from codec.eval.metrics import pesq_wb, si_sdr, stoi

SAMPLE = Path(__file__).parents[1] / "tests" / "data" / "speech_en.flac"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio", nargs="?", type=Path, default=SAMPLE)
    parser.add_argument("--model", default="speech16k", help="preset (untrained) or checkpoint")
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="decoded WAVs go here")
    args = parser.parse_args()

    if Path(args.model).is_file():
        model = codec.load_model(args.model)
    else:
        torch.manual_seed(0)
        model = codec.build_model(args.model).eval()
        print(
            f"note: {args.model} is an UNTRAINED model (no trained default model ships yet); "
            "quality figures are those of random weights."
        )
    wav, rate = load_audio(args.audio, model.sample_rate)
    x = torch.from_numpy(wav[:1])[None]
    seconds = x.shape[-1] / rate
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"input: {args.audio} ({seconds:.2f} s, {rate} Hz); latency {model.latency_ms:.0f} ms")
    print("| stages | kbps | tokens | PESQ-WB | STOI | SI-SDR dB | output |")
    print("|---|---|---|---|---|---|---|")
    for n in sorted(
        {max(1, model.num_stages // 4), max(1, model.num_stages // 2), model.num_stages}
    ):
        with torch.inference_mode():
            codes = model.encode(x, n_stages=n)
            y = model.decode(codes)[0, 0, : x.shape[-1]].numpy()
        ref = x[0, 0].numpy()
        out = args.out / f"{args.audio.stem}_{n}stages.wav"
        save_audio(out, y[None], rate)
        print(
            f"| {n} | {model.bitrate(n) / 1000:.2f} | {codes.numel()} | {pesq_wb(ref, y):.2f} "
            f"| {stoi(ref, y, rate):.3f} | {si_sdr(ref, y):.1f} | {out} |"
        )


if __name__ == "__main__":
    main()
