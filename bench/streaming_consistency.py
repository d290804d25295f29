"""Streaming vs one-piece processing on real speech: share of differing codes, audio difference.

Usage: python bench/streaming_consistency.py [FILE_OR_DIR ...] [--model PRESET_OR_CKPT]
       [--chunkings 3] [--max-chunk 4000] [--limit 50]

Each file is encoded offline and then streamed in random chunk sizes (1 sample up to
`--max-chunk`); a latent that sits on a bin edge can flip when floating-point summation order
changes, so the share of differing codes is measured, not assumed (target 0, at most 0.1%).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import codec
from codec import zoo
from codec.audio import find_files, load_audio

DEFAULT_AUDIO = Path(__file__).parents[1] / "tests" / "data" / "speech_en.flac"


def audio_files(paths: list[Path], limit: int) -> list[Path]:
    files = []
    for path in paths:
        files += find_files(path) if path.is_dir() else [path]
    return files[:limit]


def chunk_sizes(total: int, rng: np.random.Generator, max_chunk: int) -> list[int]:
    sizes = []
    while sum(sizes) < total:
        sizes.append(1 if rng.random() < 0.1 else int(rng.integers(1, max_chunk + 1)))
    sizes[-1] -= sum(sizes) - total
    return sizes


def load(model_arg: str) -> codec.CodecModel:
    """A checkpoint or a zoo model; else a preset, untrained (seed 0)."""
    if Path(model_arg).is_file() or zoo.resolve(model_arg) in zoo.MODELS | zoo.ARCHIVED:
        return codec.load_model(model_arg)
    torch.manual_seed(0)
    return codec.build_model(model_arg).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("audio", nargs="*", type=Path, default=[DEFAULT_AUDIO])
    parser.add_argument(
        "--model", default="default", help="zoo name, checkpoint, or preset (untrained)"
    )
    parser.add_argument("--chunkings", type=int, default=3)
    parser.add_argument("--max-chunk", type=int, default=4000)
    parser.add_argument("--limit", type=int, default=50, help="at most this many files")
    args = parser.parse_args()

    model = load(args.model)
    rng = np.random.default_rng(0)
    differing = total = 0
    worst_audio = 0.0
    files = audio_files(args.audio, args.limit)
    with torch.inference_mode():
        for path in files:
            wav, _ = load_audio(path, model.sample_rate)
            x = torch.from_numpy(wav[:1, : wav.shape[1] // model.hop_length * model.hop_length])[
                None
            ]
            codes = model.encode(x)  # offline: the end padded by the model's delay
            audio = model.decode(codes)  # offline: the first `delay` samples dropped
            flushed = torch.nn.functional.pad(
                x, (0, codes.shape[-1] * model.hop_length - x.shape[-1])
            )
            for _ in range(args.chunkings):
                with model.streaming(batch_size=1):
                    parts, start = [], 0
                    for size in chunk_sizes(flushed.shape[-1], rng, args.max_chunk):
                        parts.append(model.encode(flushed[..., start : start + size]))
                        start += size
                    streamed_codes = torch.cat(parts, dim=-1)
                with model.streaming(batch_size=1):
                    streamed_audio = torch.cat(
                        [model.decode(codes[..., i : i + 1]) for i in range(codes.shape[-1])], -1
                    )
                differing += int((streamed_codes != codes).sum())
                total += codes.numel()
                late = streamed_audio[..., model.delay :]  # a stream's audio comes `delay` late
                worst_audio = max(worst_audio, float((late - audio).abs().max()))
    seconds = total / args.chunkings / model.num_stages / model.frame_rate
    print(f"{len(files)} files, {seconds:.0f} s of audio, {args.chunkings} random chunkings each")
    print(f"differing codes: {differing} of {total} ({100 * differing / max(total, 1):.4f}%)")
    print(f"max |streamed - offline| audio (frame-by-frame decode): {worst_audio:.2e}")


if __name__ == "__main__":
    main()
