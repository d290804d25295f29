"""`codec compile`: fit the codebooks of a VP model on a corpus, after training."""

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
        float, typer.Option(help="Use at most this much audio (k-means sees 50 frames/s).")
    ] = 3600.0,
    force: Annotated[bool, typer.Option(help="Overwrite OUT if it exists.")] = False,
) -> None:
    """Compile the codebooks of a model's VP stages by k-means on the latents of a corpus.

    Stage by stage on true residuals, together with each stage's training queue. A VP model
    needs this once after training before it can encode.

    Example: codec compile exp/vp/model.ckpt --data data/train -o exp/vp/compiled.ckpt
    """
    import torch
    from tqdm import tqdm

    from codec.data.kaldi import load_utterance, read_data_dir
    from codec.zoo import load_model

    if out.exists() and not force:
        fail(f"{out} exists; pass --force to overwrite it")
    try:
        codec_model = load_model(model)
        utterances = read_data_dir(data)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    if not codec_model.quantizer.vp_stages:
        fail(f"{model} has no VP stage: its codebooks need no compiling")

    used = {"seconds": 0.0, "utterances": 0}

    def batches():
        for utt in tqdm(utterances, desc="latents", unit="utt"):
            if used["seconds"] >= max_seconds:
                return
            wav = load_utterance(utt, codec_model.sample_rate)
            used["seconds"] += wav.shape[1] / codec_model.sample_rate
            used["utterances"] += 1
            yield torch.from_numpy(wav)[:, None]  # channels as a batch: [C, 1, T]

    codec_model.compile_codebooks(batches())
    codec_model.save(out)
    typer.echo(
        f"compiled {len(codec_model.quantizer.vp_stages)} VP stages on {used['seconds']:.1f} s "
        f"of audio ({used['utterances']} utterances) -> {out}"
    )
