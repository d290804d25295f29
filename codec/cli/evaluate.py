"""`codec eval` and `codec bench`: quality metrics, token usage, and classical baselines."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from codec.cli.app import app, fail
from codec.eval.metrics import BENCH_METRICS


@app.command("eval")
def evaluate(
    ref: Annotated[
        Path | None, typer.Argument(help="Reference file, directory or wav.scp.")
    ] = None,
    hyp: Annotated[Path | None, typer.Argument(help="Decoded file, directory or wav.scp.")] = None,
    tokens: Annotated[
        Path | None, typer.Option("--tokens", help="Report token usage of the .tok files here.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write reports in this directory.")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes.")] = 1,
    model: Annotated[
        str | None,
        typer.Option(
            "--model", "-m", help="With --tokens: the checkpoint whose entropy tables read them."
        ),
    ] = None,
    metrics: Annotated[
        str,
        typer.Option(
            "--metrics",
            help="Comma list of metrics, or `default` (pesq_wb, pesq_nb, stoi, estoi, si_sdr, "
            "mel_distance, pitch), or `all` (adds dnsmos, plcmos, visqol, speaker_similarity, "
            "wer), e.g. default,visqol.",
        ),
    ] = "default",
    text: Annotated[
        Path | None,
        typer.Option(
            "--text",
            help="Kaldi text file (utterance id, then the words) of the references, for WER "
            "(default: the `text` beside REF's wav.scp, if there is one); without one, WER is "
            "scored against the recognizer's output on the reference.",
        ),
    ] = None,
) -> None:
    """Score decoded audio against references: PESQ (wide and narrow band), STOI, ESTOI, SI-SDR,
    mel distance, after removing a constant delay. Or, with --tokens, report token usage.

    Directories are matched by relative path, wav.scp files by utterance id. With --out, writes
    per_utt.csv, summary.json and summary.md (or tokens.json/tokens.md). Entropy-coded token
    files are read with the tables of the zoo model they name, or of --model.

    Example: codec eval data/test/wav.scp exp/decoded/wav.scp --out exp/scores --jobs 2
    """
    if tokens is not None:
        _token_report(tokens, out, model)
        return
    if ref is None or hyp is None:
        fail("give REF and HYP (files, directories or wav.scp files), or --tokens DIR")
    from tqdm import tqdm

    from codec.data.kaldi import read_text, text_beside
    from codec.eval.metrics import check_available, select_metrics
    from codec.eval.perceptual import MetricUnavailable
    from codec.eval.scoring import match, score_pairs, summarise, summary_markdown, write_report

    try:
        chosen = select_metrics(metrics)
        check_available(chosen)
        pairs = match(ref, hyp)
        text = text or text_beside(ref)
        texts = read_text(text) if text is not None else None
    except (FileNotFoundError, ValueError, MetricUnavailable) as error:
        fail(str(error))
    if "wer" in chosen:
        against = (
            f"the transcripts in {text}" if text else "the recognizer's output on each reference"
        )
        typer.echo(f"WER is scored against {against}", err=True)
    with tqdm(
        total=len(pairs),
        desc="scoring",
        unit="file",
        disable=True if len(pairs) < 2 else None,
        file=sys.stderr,
    ) as bar:
        try:
            rows = score_pairs(pairs, jobs, bar.update, chosen, texts)
        except (FileNotFoundError, ValueError) as error:
            fail(str(error))
    for row in rows:
        if row["errors"]:
            typer.echo(
                f"warning: {row['key']}: {row['errors']} (left out of those means)", err=True
            )
    summary = summarise(rows)
    if out is not None:
        write_report(rows, summary, out)
    typer.echo(summary_markdown(summary), nl=False)


def _token_report(directory: Path, out: Path | None, model: str | None) -> None:
    from codec.eval.token_report import token_usage, usage_markdown
    from codec.tokens import TokenFileError
    from codec.zoo import load_model

    try:
        usage, totals = token_usage(directory, load_model(model) if model else None)
    except (FileNotFoundError, ValueError, TokenFileError) as error:
        fail(str(error))
    text = usage_markdown(usage, totals)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        stages = [
            {
                "stage": i + 1,
                "codebook_size": u.codebook_size,
                "utilisation": u.utilisation,
                "perplexity": u.perplexity,
                "perplexity_ratio": u.perplexity_ratio,
                "entropy_bits": u.entropy_bits,
            }
            for i, u in enumerate(usage)
        ]
        (out / "tokens.json").write_text(json.dumps({"stages": stages, **totals}, indent=2) + "\n")
        (out / "tokens.md").write_text(text)
    typer.echo(text, nl=False)


@app.command()
def bench(
    source: Annotated[
        Path,
        typer.Argument(
            help="Directory of speech files, or a Kaldi data directory (or its wav.scp) whose "
            "`text` gives transcripts for WER."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory for bench.json, bench.md, rd.png.")
    ],
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Zoo name or checkpoint.")
    ] = None,
    stages: Annotated[
        str | None, typer.Option("--stages", help="Comma-separated stage counts (default: all).")
    ] = None,
    long_seconds: Annotated[
        float,
        typer.Option(
            "--long-seconds",
            min=1.0,
            help="Length of the long file on which the codec command is timed on one CPU.",
        ),
    ] = 600.0,
    metrics: Annotated[
        str,
        typer.Option(
            "--metrics",
            help="Comma list of metrics (see `codec eval --help`), `default` or `all`.",
        ),
    ] = ",".join(BENCH_METRICS),
    listen: Annotated[
        int,
        typer.Option("--listen", min=0, help="Files on the listening page (index.html); 0: none."),
    ] = 5,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j", min=1, help="Worker processes coding and scoring [default: all CPUs]."
        ),
    ] = None,
    classical: Annotated[
        str,
        typer.Option(
            "--baselines",
            help="Classical codec settings to run beside ours: all, none, or a comma list such "
            "as opus-6kbps,opus-8kbps,codec2-3200 (a wrong name lists them all). Their rows do "
            "not depend on our model: leave out the ones already measured on these files.",
        ),
    ] = "all",
) -> None:
    """Our model at each bitrate next to Opus (6, 8, 12, 16 kbps, VoIP) and Codec2 (3200, 1600,
    700C), on the same files, scored the same way, with speed and latency, in one run.

    Writes bench.md, bench.json (means, 95% CIs, counts), rd.png, and index.html: a listening
    page with the reference and every codec setting of the first --listen files, labelled with
    bitrate and scores (relative links and FLAC audio: open it from disk, or zip the folder).

    Needs opusenc/opusdec and c2enc/c2dec for the baselines that run (tools/install_baselines.sh
    installs them).

    Example: codec bench data/test_audio --out exp/bench --model exp/run1/model.ckpt
    """
    from tqdm import tqdm

    from codec.cli.jobs import usable_cpus
    from codec.eval.baselines import BaselineToolMissing, select_baselines
    from codec.eval.bench import run_bench, write_bench
    from codec.eval.listening import write_listening_page
    from codec.eval.metrics import select_metrics
    from codec.eval.perceptual import MetricUnavailable
    from codec.zoo import load_model, model_label

    reference = model or "default"
    try:
        chosen = select_metrics(metrics)
        compared = select_baselines(classical)
        counts = [int(s) for s in stages.split(",")] if stages else None
        loaded = load_model(reference).eval()
        if counts and not all(1 <= n <= loaded.num_stages for n in counts):
            fail(f"--stages: the model has 1 to {loaded.num_stages} stages")
        bars = []

        def progress(total: int):
            bars.append(tqdm(total=total, desc="bench", unit="file", file=sys.stderr))
            return bars[-1].update

        result = run_bench(
            source,
            loaded,
            model_label(reference),
            counts,
            progress,
            reference,
            long_seconds,
            chosen,
            listen,
            jobs or usable_cpus(),
            compared,
        )
        for bar in bars:
            bar.close()
    except (FileNotFoundError, ValueError, BaselineToolMissing, MetricUnavailable) as error:
        fail(str(error))
    write_bench(result, model_label(reference), out)
    typer.echo((out / "bench.md").read_text(), nl=False)
    if result.examples:
        page = write_listening_page(result.rows, result.examples, model_label(reference), out)
        typer.echo(f"listening page: {page}")
