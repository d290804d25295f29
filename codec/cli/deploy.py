"""`codec export` (ONNX graphs for a torch-free runtime) and `codec stream` (live coding of raw
PCM on stdin, packet by packet, with packet-loss concealment)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from codec.cli.app import app, fail
from codec.cli.coding import BackendOption, ModelOption, _check_device, _init_worker, _label, _model

stream_app = typer.Typer(
    help="Live coding: raw 16-bit PCM (mono, the model's rate) on stdin -> packets on stdout as "
    "each is complete, and back, concealing lost packets.",
    no_args_is_help=True,
)
app.add_typer(stream_app, name="stream")


@app.command()
def export(
    model: Annotated[str, typer.Argument(help="Zoo name (e.g. default) or checkpoint file.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the graphs.")],
    force: Annotated[bool, typer.Option("--force", help="Replace what is in OUT.")] = False,
) -> None:
    """Export a model to ONNX for onnxruntime: an encoder and a decoder graph, each taking one
    chunk (of audio, or codes) and its streaming state as explicit tensors and returning the
    output and the next state; weight norm folded, batch dynamic.

    Chunks of 1 frame (20 ms, live streaming) and of 50 frames (1 s, files) each have their
    own graphs; the decoder takes every stage's codes plus the number of stages to use, so one
    decoder serves every bitrate. manifest.json holds the rates, stage sizes, state names and
    shapes, the model's name and weights hash; entropy.npz the entropy-coding tables.
    `codec encode/decode --backend onnx --model OUT` run them without torch.

    Example: codec export default -o exported/
    """
    from codec.export import export_model
    from codec.zoo import load_model, model_label

    if out.exists() and any(out.iterdir()) and not force:
        fail(f"{out} is not empty; pass --force to replace its graphs")
    try:
        loaded = load_model(model)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    manifest = export_model(loaded, model_label(model), out)
    files = sorted(p.name for p in out.iterdir())
    typer.echo(f"exported {model_label(model)} to {out}: {', '.join(files)}")
    typer.echo(f"manifest: {manifest}")


def _write_pcm(audio: np.ndarray) -> None:
    from codec.audio import pcm16_bytes

    sys.stdout.buffer.write(pcm16_bytes(audio))
    sys.stdout.buffer.flush()


@stream_app.command("encode")
def stream_encode(
    bitrate: Annotated[
        float | None, typer.Option("--bitrate", "-b", help="Target kbps: the most stages that fit.")
    ] = None,
    stages: Annotated[int | None, typer.Option("--stages", "-s", min=1)] = None,
    packet_ms: Annotated[
        int, typer.Option("--packet-ms", help="Audio per packet: a multiple of the 20 ms frame.")
    ] = 20,
    model: ModelOption = None,
    backend: BackendOption = "torch",
) -> None:
    """Read raw PCM (16-bit little-endian, mono, at the model's rate: 16 kHz) from stdin as it
    arrives and write a live stream to stdout: its header, then one packet as soon as each
    --packet-ms of audio is in (1 byte of framing per packet). The end of input flushes the
    last, zero-padded packet.

    Example: arecord -f S16_LE -r 16000 -c 1 -t raw | codec stream encode -b 6 | ...
    """
    from codec.compress import as_coder, stages_for_bitrate
    from codec.live import LiveEncoder

    _check_device("cpu", backend)
    reference = model or "default"
    try:
        _init_worker("cpu", 1, backend)
        loaded = _model(reference)
        coder = as_coder(loaded)
        n = stages or (stages_for_bitrate(coder, bitrate) if bitrate else coder.num_stages)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    frame_ms = 1000 / coder.frame_rate
    if packet_ms % round(frame_ms) or packet_ms <= 0:
        fail(f"--packet-ms must be a multiple of the model's {frame_ms:g} ms frame")
    out = sys.stdout.buffer
    with coder.streaming(batch_size=1) as stream:
        live = LiveEncoder(coder, stream, _label(reference, loaded), n, round(packet_ms / frame_ms))
        out.write(live.header_bytes())
        out.flush()
        while True:
            data = sys.stdin.buffer.read(2 * live.packet_samples)
            last = len(data) < 2 * live.packet_samples
            pcm = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.float32)
            for packet in live.push(pcm / 32768, last):
                out.write(packet)
                out.flush()
            if last:
                return


@stream_app.command("decode")
def stream_decode(
    loss_rate: Annotated[
        float,
        typer.Option(
            "--loss-rate",
            min=0.0,
            max=1.0,
            help="Drop each packet with this probability (a "
            "simulated lossy channel; lost packets are concealed).",
        ),
    ] = 0.0,  # fmt: skip
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated losses.")] = 0,
    model: ModelOption = None,
    backend: BackendOption = "torch",
) -> None:
    """Read a live stream from stdin as it arrives and write raw PCM (16-bit little-endian,
    mono, the model's rate) to stdout, flushed after every packet. Packets missing from the
    sequence, marked lost, or dropped by --loss-rate are concealed (the last frame decoded
    again, fading out over 100 ms); the output stays time-aligned.

    Example: ... | codec stream decode --loss-rate 0.1 | aplay -f S16_LE -r 16000 -c 1
    """
    from codec.compress import as_coder, check_header_fits
    from codec.live import decode_packets, read_packets, read_stream_header
    from codec.tokens import TokenFileError

    _check_device("cpu", backend)
    try:
        header = read_stream_header(sys.stdin.buffer)
        _init_worker("cpu", 1, backend)
        coder = as_coder(_model(model or header.model))
        check_header_fits(header, coder, "the live stream")
    except (FileNotFoundError, ValueError, TokenFileError) as error:
        fail(str(error))
    drop = np.random.default_rng(seed) if loss_rate > 0 else None
    concealed = total = 0
    with coder.streaming(batch_size=1) as stream:
        records = read_packets(sys.stdin.buffer, header)
        for audio, lost in decode_packets(records, stream, header, drop, loss_rate):
            _write_pcm(audio)
            total += 1
            concealed += lost
    if concealed:
        typer.echo(f"concealed {concealed} of {total} packets", err=True)
