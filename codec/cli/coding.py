"""`codec encode`, `codec decode`, `codec roundtrip`: audio files <-> token files."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from codec.audio import AUDIO_SUFFIXES
from codec.cli.app import app, fail
from codec.cli.jobs import STDIO, Job, atomic_output, open_input, plan, run_jobs, usable_cpus

TOKEN_SUFFIX = ".tok"
LONG_FILE_SECONDS = 60.0  # a single file at least this long gets a progress bar
_RUN = {"device": "cpu", "backend": "auto", "threads": 1}  # per process: how models run
_MODELS: dict[str, object] = {}  # per process: models loaded, by reference
BACKENDS = ("auto", "torch", "onnx")


ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Zoo name (see `codec models`), or a checkpoint file or exported folder named by "
        "a path with a / or a .ckpt suffix (./mymodel for one in this folder).",
    ),
]
ForceOption = Annotated[bool, typer.Option("--force", help="Overwrite outputs that exist.")]
JobsOption = Annotated[
    int, typer.Option("--jobs", "-j", min=1, help="Worker processes for batches.")
]
DeviceOption = Annotated[str, typer.Option("--device", help="cpu or cuda.")]
BackendOption = Annotated[
    str,
    typer.Option(
        "--backend",
        help="auto: the torch-free runtime (onnx) wherever it can run the model on the CPU, "
        "else torch, with a note that says so; torch; or onnx: the model's exported graphs run "
        "by onnxruntime, without torch (the zoo's models are exported by `make install`, any "
        "other checkpoint on first use, then cached; --model also takes a directory written by "
        "`codec export`). All write and read the same token files.",
    ),
]


def _init_worker(device: str, threads: int, backend: str = "auto") -> None:
    if backend == "auto" and device != "cpu":
        backend = "torch"  # the runtime runs on the CPU only
    if backend == "torch":
        _torch_threads(threads)
    _MODELS.clear()
    _RUN.update(device=device, backend=backend, threads=threads)


def _torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _model(reference: str):
    """The model for `reference` (zoo name or path), loaded once per process: with the onnx
    backend its exported graphs; with auto those, or where the model cannot be exported a torch
    model (with a note on stderr); with torch a torch model in eval mode."""
    if reference not in _MODELS:
        from codec.zoo import ExportError, load_model, load_onnx

        if _RUN["backend"] != "torch":
            try:
                _MODELS[reference] = load_onnx(reference, _RUN["threads"])
                return _MODELS[reference]
            except ExportError as error:
                if _RUN["backend"] == "onnx":
                    raise ValueError(f"--backend onnx cannot run {reference}: {error}") from None
                typer.echo(
                    f"note: {reference} runs with torch: the torch-free runtime cannot run it "
                    f"({error})",
                    err=True,
                )
                _torch_threads(_RUN["threads"])
        _MODELS[reference] = load_model(reference).to(_RUN["device"]).eval()
    return _MODELS[reference]


def _label(reference: str, model) -> str:
    """How token files name the model: an exported model's own name, else the zoo name or the
    checkpoint's file name."""
    from codec.runtime import OnnxCodec
    from codec.zoo import model_label

    return model.name if isinstance(model, OnnxCodec) else model_label(reference)


@contextmanager
def _progress_bar(show: bool, total: float | None, describe: str):
    """A progress callback in seconds of audio, shown on stderr for one long file."""
    from tqdm import tqdm

    shown = show and (total is None or total >= LONG_FILE_SECONDS)
    # disable=None: shown on a terminal only, never in logs or pipes
    with tqdm(
        total=total, desc=describe, unit="s", disable=None if shown else True, file=sys.stderr
    ) as bar:
        yield bar.update


def _encode_job(
    job: Job,
    model_ref: str,
    stages: int | None,
    kbps: float | None,
    force: bool,
    show_progress: bool = False,
    fixed_rate: bool = False,
) -> str:
    from codec.audio import duration_seconds
    from codec.compress import encode_file, stages_for_bitrate

    model = _model(model_ref)
    n_stages = stages if stages is not None else stages_for_bitrate(model, kbps) if kbps else None
    show = show_progress and job.source != STDIO
    total = duration_seconds(job.source) if show else None
    with (
        open_input(job.source) as source,
        atomic_output(job.target, force) as target,
        _progress_bar(show and total is not None, total, "encode") as progress,
    ):
        result = encode_file(
            model,
            _label(model_ref, model),
            source,
            target,
            n_stages,
            job.source,
            progress,
            fixed_rate,
        )
    if result.short_read:
        typer.echo(f"warning: {result.short_read}: coded what it holds", err=True)
    return job.target


def _decode_job(job: Job, model_ref: str | None, force: bool, show_progress: bool = False) -> str:
    from codec.audio import audio_format
    from codec.compress import decode_file, zoo_name

    def load(header):
        return _model(model_ref if model_ref is not None else zoo_name(header, job.source))

    source = sys.stdin.buffer if job.source == STDIO else None
    fmt = "WAV" if job.target == STDIO else audio_format(job.target)
    if source is None and not Path(job.source).is_file():
        raise FileNotFoundError(f"no such token file: {job.source}")
    with (
        atomic_output(job.target, force) as target,
        _progress_bar(show_progress, None, "decode") as progress,
    ):
        if source is not None:
            result = decode_file(source, target, load, "stdin", fmt, progress)
        else:
            with open(job.source, "rb") as stream:
                result = decode_file(stream, target, load, job.source, fmt, progress)
    if result.damage():
        typer.echo(f"warning: {job.source}: {result.damage()}", err=True)
    return job.target


def _run(
    jobs: list[Job], worker, n_workers: int, device: str, describe: str, backend: str = "auto"
) -> None:
    threads = 1 if n_workers > 1 else usable_cpus()
    start = partial(_init_worker, device, threads, backend)
    failed = run_jobs(jobs, worker, n_workers, start, describe)
    if failed and len(jobs) > 1:
        fail(f"{failed} of {len(jobs)} files failed")
    if failed:
        raise typer.Exit(1)


def _plan(
    inputs: list[str], out: str | None, suffixes: tuple[str, ...], out_suffix: str
) -> list[Job]:
    try:
        return plan(inputs, out, suffixes, out_suffix)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))


def _check_device(device: str, backend: str = "auto") -> None:
    if backend not in BACKENDS:
        fail(f"--backend must be auto, torch or onnx, not {backend!r}")
    if device not in ("cpu", "cuda"):
        fail(f"--device must be cpu or cuda, not {device!r}")
    if backend == "onnx" and device != "cpu":
        fail("--backend onnx runs on the CPU: leave out --device")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            fail("--device cuda: no CUDA device is available here; use --device cpu")


@app.command()
def encode(
    inputs: Annotated[
        list[str], typer.Argument(help="Audio files, directories, wav.scp files, or - for stdin.")
    ],
    out: Annotated[
        str | None, typer.Option("-o", "--out", help="Output file, directory, or - for stdout.")
    ] = None,
    bitrate: Annotated[
        float | None, typer.Option("--bitrate", "-b", help="Target kbps: the most stages that fit.")
    ] = None,
    stages: Annotated[
        int | None, typer.Option("--stages", "-s", min=1, help="Number of stages.")
    ] = None,
    fixed_rate: Annotated[
        bool,
        typer.Option(
            "--fixed-rate",
            help="Always write format version 2 (fixed-rate): every second costs the nominal "
            "bitrate. By default each file is coded both ways and the smaller is written: "
            "entropy-coded (version 3) or fixed-rate; same codes, same audio.",
        ),
    ] = False,
    model: ModelOption = None,
    device: DeviceOption = "cpu",
    force: ForceOption = False,
    jobs: JobsOption = 1,
    backend: BackendOption = "auto",
) -> None:
    """Encode audio (WAV, FLAC, OGG, MP3; any rate, any channels) into token files.

    Without -o, x.wav becomes x.tok beside it. Directories are searched recursively and their
    relative paths kept under -o DIR. Existing outputs are kept unless --force is given.
    --bitrate and --stages set the nominal bitrate; each file is then written entropy-coded
    when the model's tables make it smaller than fixed-rate (`codec info` prints the format
    and both bitrates), with the same codes and the same decoded audio.

    Example: codec encode speech.wav --bitrate 3 -o speech.tok
    """
    if bitrate is not None and stages is not None:
        fail("give --bitrate or --stages, not both")
    _check_device(device, backend)
    reference = model or "default"
    job_list = _plan(inputs, out, AUDIO_SUFFIXES, TOKEN_SUFFIX)  # argument errors before a model
    try:
        from codec.compress import stages_for_bitrate

        _init_worker(device, usable_cpus(), backend)
        loaded = _model(reference)
        if bitrate is not None:
            stages_for_bitrate(loaded, bitrate)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        fail(str(error))
    if stages is not None and stages > loaded.num_stages:
        fail(f"--stages {stages}: the model has {loaded.num_stages} stages")
    single = len(job_list) == 1
    worker = partial(
        _encode_job,
        model_ref=reference,
        stages=stages,
        kbps=bitrate,
        force=force,
        show_progress=single,
        fixed_rate=fixed_rate,
    )
    _run(job_list, worker, jobs, device, "encode", backend)
    if loaded.entropy is None and not fixed_rate:
        typer.echo(
            f"note: model {reference} has no entropy tables, so the files are fixed-rate "
            "(`codec compile MODEL --data DIR` fits them)",
            err=True,
        )


@app.command()
def decode(
    inputs: Annotated[
        list[str], typer.Argument(help="Token files, directories of them, or - for stdin.")
    ],
    out: Annotated[
        str | None, typer.Option("-o", "--out", help="Output file (.wav/.flac), directory, or -.")
    ] = None,
    model: ModelOption = None,
    device: DeviceOption = "cpu",
    force: ForceOption = False,
    jobs: JobsOption = 1,
    backend: BackendOption = "auto",
) -> None:
    """Decode token files back to audio at their original sample rate and channel count.

    Without --model, the model named in each file is taken from the zoo; with --model, its
    weights must be the ones the file was made with. Without -o, x.tok becomes x.wav.

    Example: codec decode speech.tok -o speech.wav
    """
    _check_device(device, backend)
    job_list = _plan(inputs, out, (TOKEN_SUFFIX,), ".wav")
    worker = partial(_decode_job, model_ref=model, force=force, show_progress=len(job_list) == 1)
    _run(job_list, worker, jobs, device, "decode", backend)


@app.command()
def roundtrip(
    source: Annotated[Path, typer.Argument(help="Audio file.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Decoded audio file.")],
    bitrate: Annotated[float | None, typer.Option("--bitrate", "-b", help="Target kbps.")] = None,
    stages: Annotated[
        int | None, typer.Option("--stages", "-s", min=1, help="Number of stages.")
    ] = None,
    model: ModelOption = None,
    force: ForceOption = False,
    backend: BackendOption = "auto",
) -> None:
    """Encode and decode one file; print the bitrate and the quality (PESQ, STOI) of the result.

    Example: codec roundtrip speech.wav -o speech.decoded.wav --bitrate 6
    """
    import io

    from codec.audio import audio_format, load_audio
    from codec.compress import decode_file, encode_file, stages_for_bitrate
    from codec.eval.metrics import pesq_wb, stoi
    from codec.zoo import model_label

    reference = model or "default"
    _check_device("cpu", backend)
    if str(out) == "-":
        fail("roundtrip prints its figures on stdout: give -o an audio file")
    if out.exists() and not force:
        fail(f"{out} exists; pass --force to overwrite it")
    try:
        _init_worker("cpu", usable_cpus(), backend)
        loaded = _model(reference)
        n = (
            stages
            if stages is not None
            else stages_for_bitrate(loaded, bitrate)
            if bitrate
            else None
        )
        tokens = io.BytesIO()
        result = encode_file(loaded, model_label(reference), source, tokens, n, name=str(source))
        tokens.seek(0)
        with atomic_output(str(out), force) as target:
            decode_file(tokens, target, lambda header: loaded, audio_format=audio_format(out))
        ref, rate = load_audio(source, 16000)
        hyp, _ = load_audio(out, 16000)
    except (FileNotFoundError, ValueError, RuntimeError) as error:
        fail(str(error))
    size = len(tokens.getvalue())
    typer.echo(f"{source} -> {out}: {result.seconds:.2f} s, {result.header.n_stages} stages")
    actual = 8 * size / result.seconds / 1000
    nominal = result.header.bitrate / 1000
    typer.echo(f"bitrate: {nominal:.2f} kbps nominal, {actual:.2f} kbps actual ({size} bytes)")
    try:
        quality = (
            f"PESQ-WB: {pesq_wb(ref[0], hyp[0], rate):.2f}  STOI: {stoi(ref[0], hyp[0], rate):.3f}"
        )
    except Exception as error:  # noqa: BLE001  (e.g. PESQ finds no speech in the file)
        quality = f"quality not measured: {error}"
    typer.echo(f"{quality}  (first channel, at 16 kHz)")
