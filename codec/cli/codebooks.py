"""`codec compile`: fit what a model learns from a corpus after training: the codebooks of its
VP stages and its entropy-coding tables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from codec.cli.app import app, fail


@app.command("compile")
def compile_codebooks(
    model: Annotated[str, typer.Argument(help="Checkpoint file or zoo model name.")],
    data: Annotated[Path, typer.Option("--data", help="Kaldi data directory (wav.scp).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Where to write the compiled model.")],
    max_seconds: Annotated[
        float, typer.Option(help="Use at most this much audio (50 frames/s for a 16 kHz model).")
    ] = 3600.0,
    half: Annotated[
        bool, typer.Option(help="Store the weights in fp16, as the zoo's models are.")
    ] = False,
    force: Annotated[bool, typer.Option(help="Overwrite OUT if it exists.")] = False,
) -> None:
    """Compile a model on a corpus: VP codebooks, then entropy-coding tables.

    VP stages get their codebooks by k-means on the latents of the corpus, stage by stage on
    true residuals, together with each stage's training queue (a VP model needs this once
    before it can encode). Every model then gets its entropy-coding tables fitted on the codes
    of the corpus, so `codec encode` writes entropy-coded files (format version 3). `codec
    train` does both at its end; this command is for older checkpoints, or to refit the
    tables on other speech. The weights are unchanged, so files written before still decode.

    Example: codec compile exp/vp/model.ckpt --data data/train -o exp/vp/compiled.ckpt
    """
    import random

    import torch
    from tqdm import tqdm

    from codec.data.kaldi import load_utterance, read_data_dir
    from codec.zoo import load_model

    if out.exists() and not force:
        fail(f"{out} exists; pass --force to overwrite it")
    try:
        codec_model = load_model(model)
        utterances = read_data_dir(data)  # in a fixed shuffled order: all of the corpus
        utterances = random.Random(0).sample(utterances, len(utterances))
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    if not utterances:
        fail(f"{data / 'wav.scp'} lists no utterances: nothing to compile on")
    used = {"seconds": 0.0, "utterances": 0}

    def batches(describe: str):
        used.update(seconds=0.0, utterances=0)
        for utt in tqdm(utterances, desc=describe, unit="utt"):
            if used["seconds"] >= max_seconds:
                return
            wav = load_utterance(utt, codec_model.sample_rate)
            used["seconds"] += wav.shape[1] / codec_model.sample_rate
            used["utterances"] += 1
            yield torch.from_numpy(wav)[:, None]  # channels as a batch: [C, 1, T]

    n_vp = len(codec_model.quantizer.vp_stages)
    if n_vp:
        codec_model.compile_codebooks(batches("latents"))
        typer.echo(f"compiled {n_vp} VP stages on {used['seconds']:.1f} s of audio")
    entropy = codec_model.fit_entropy(batches("codes"))
    typer.echo(
        f"fitted entropy tables {entropy.hash} on {used['seconds']:.1f} s of audio "
        f"({used['utterances']} utterances)"
    )
    codec_model.save(out, "fp16" if half else "fp32")
    typer.echo(f"wrote {out}")
