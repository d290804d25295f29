"""What entropy coding saves: nominal, fixed-rate and entropy-coded kbps from file sizes, what
`codec encode` writes (the smaller of the two, file by file), and the bits per frame of each
stage under the model's tables. Figures, not a test.

Usage: python bench/entropy_coding.py DATA_DIR [--model default] [--stages 3,6,12]
                                     [--fit TRAIN_DIR --fit-every 4]

DATA_DIR is a Kaldi data directory of held-out speech (not the tables' training data). Three
settings: one file per utterance; one long recording made of the utterances in order with
pauses of 0.3-1.5 s of white noise at --pause-db dBFS between them; and the codes alone (the
payload's bits, what a long file tends to). Codes come from `encode_file` (the command's path)
at all stages; files with fewer stages hold their first stages, which are the codes an encode
with that many stages gives. With --fit, the model's tables are first fitted again on the codes
of every --fit-every-th utterance of TRAIN_DIR (as `codec compile` would fit them), to see what
a refit would give; the model's file is not changed.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import math
import time

import numpy as np
import soundfile as sf
import torch

import codec
from codec.compress import encode_file
from codec.data.kaldi import load_utterance, read_data_dir
from codec.tokens import TokenHeader, TokenReader, frames_per_packet, token_file_bytes
from codec.zoo import model_label


def codes_of(model, label: str, wav: np.ndarray) -> tuple[TokenHeader, np.ndarray, int]:
    """Header, codes `[1, n_q, frames]` and samples of `wav` through `codec encode`'s path."""
    source, tokens = io.BytesIO(), io.BytesIO()
    sf.write(source, wav, model.sample_rate, format="WAV", subtype="FLOAT")
    source.seek(0)
    encode_file(model, label, source, tokens, fixed_rate=True)
    reader = TokenReader(io.BytesIO(tokens.getvalue()))
    return reader.header, reader.read_all(), reader.num_samples


def file_bytes(model, header: TokenHeader, codes: np.ndarray, samples: int, n: int) -> dict:
    """Bytes of the fixed-rate and the entropy-coded file of the first `n` stages, and of the
    smaller ("written": what `codec encode` writes)."""
    sizes = header.codebook_sizes[:n]
    out = {}
    for name, entropy in (("fixed", None), ("coded", model.entropy)):
        h = dataclasses.replace(
            header,
            codebook_sizes=sizes,
            frames_per_packet=frames_per_packet(sizes, header.channels, header.frame_rate),
            entropy_hash=None if entropy is None else entropy.hash,
            entropy_scheme=1,
        )
        out[name] = len(token_file_bytes(h, codes[:, :n], samples, entropy))
    return out | {"written": min(out.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="Kaldi data directory of held-out speech")
    parser.add_argument("--model", default="default")
    parser.add_argument("--stages", default="3,6,12")
    parser.add_argument("--pause-db", type=float, default=-55.0)
    parser.add_argument("--fit", help="Kaldi data directory to fit the tables on first")
    parser.add_argument("--fit-every", type=int, default=1, help="with --fit: every n-th utterance")
    args = parser.parse_args()
    model, label = codec.load_model(args.model), model_label(args.model)
    if args.fit:
        utterances = read_data_dir(args.fit)[:: args.fit_every]
        mono = (load_utterance(u, model.sample_rate).mean(0).astype(np.float32) for u in utterances)
        wavs = (torch.from_numpy(wav)[None, None] for wav in mono)
        with torch.inference_mode():
            print(f"tables fitted on {len(utterances)} utterances: {model.fit_entropy(wavs).hash}")
    if model.entropy is None:
        raise SystemExit(f"{args.model} has no entropy tables: `codec compile` fits them")
    stages = [int(n) for n in args.stages.split(",")]
    rate = model.sample_rate
    wavs = [
        load_utterance(u, rate).mean(axis=0).astype(np.float32) for u in read_data_dir(args.data)
    ]
    rng = np.random.default_rng(0)
    parts = []
    for wav in wavs:
        gap = int(rng.uniform(0.3, 1.5) * rate)
        parts += [wav, (10 ** (args.pause_db / 20) * rng.standard_normal(gap)).astype(np.float32)]
    long = np.concatenate(parts)
    pauses = sum(len(p) for p in parts[1::2]) / len(long)
    durations = [len(w) / rate for w in wavs]
    print(f"{len(wavs)} utterances, {sum(durations):.0f} s, median {np.median(durations):.2f} s; "
          f"long recording {len(long) / rate:.0f} s with {100 * pauses:.0f}% pauses")  # fmt: skip

    start = time.perf_counter()
    totals = {n: {"fixed": 0, "coded": 0, "written": 0} for n in stages}
    bits, frames = np.zeros(model.num_stages), 0
    for wav in wavs:
        header, codes, samples = codes_of(model, label, wav)
        for n in stages:
            for key, size in file_bytes(model, header, codes, samples, n).items():
                totals[n][key] += size
        for first in range(0, codes.shape[2], header.frames_per_packet):
            packet = codes[:, :, first : first + header.frames_per_packet].transpose(2, 0, 1)
            bits += model.entropy.stage_bits(packet)
            frames += packet.shape[0]
    header, codes, samples = codes_of(model, label, long)
    long_totals = {n: file_bytes(model, header, codes, samples, n) for n in stages}
    print(f"coded in {time.perf_counter() - start:.0f} s\n")

    print(
        "| audio | stages | nominal kbps | fixed-rate kbps | entropy-coded kbps | written kbps "
        "| below nominal |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, seconds, table in (
        ("one file per utterance", sum(durations), totals),
        ("one long recording", len(long) / rate, long_totals),
    ):
        for n in stages:
            nominal = model.bitrate(n) / 1000
            fixed, coded, written = (8 * table[n][k] / seconds / 1000 for k in table[n])
            print(f"| {name} | {n} | {nominal:.3f} | {fixed:.3f} | {coded:.3f} | {written:.3f} "
                  f"| {100 * (1 - written / nominal):.1f}% |")  # fmt: skip
    cumulative = np.cumsum(bits) / frames
    for n in stages:
        nominal = model.bitrate(n) / 1000
        kbps = cumulative[n - 1] * model.frame_rate / 1000
        print(f"| the codes alone | {n} | {nominal:.3f} | | {kbps:.3f} | | "
              f"{100 * (1 - kbps / nominal):.1f}% |")  # fmt: skip
    print("\nbits per frame of each stage:", " ".join(f"{b / frames:.2f}" for b in bits))
    print(
        "fixed-rate bits per stage:",
        " ".join(f"{math.log2(k):.2f}" for k in model.quantizer.codebook_sizes),
    )


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
