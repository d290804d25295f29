"""Scoring many pairs: match references to reconstructions, score in workers, summarise."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from codec.audio import find_files
from codec.eval.metrics import DEFAULT_METRICS, score, value_names
from codec.eval.report import markdown_table

EVAL_RATE = 16000  # metrics are computed on mono audio at this rate


@dataclass(frozen=True)
class Pair:
    """A reference and its reconstruction, named by `key` (relative path or utterance id)."""

    key: str
    ref: Path
    hyp: Path


def _listing(path: Path) -> dict[str, Path]:
    """key -> file for a directory (relative path without suffix) or a wav.scp (utterance id)."""
    if path.is_dir():
        return {str(p.relative_to(path).with_suffix("")): p for p in find_files(path)}
    from codec.data.kaldi import read_wav_scp

    return read_wav_scp(path)


def match(ref: str | Path, hyp: str | Path) -> list[Pair]:
    """Pairs from two files, two directories (by relative path) or two wav.scp files (by id)."""
    ref, hyp = Path(ref), Path(hyp)
    for path in (ref, hyp):
        if not path.exists():
            raise FileNotFoundError(f"no such file or directory: {path}")
    if ref.is_file() and hyp.is_file() and ref.suffix != ".scp" and ref.name != "wav.scp":
        return [Pair(ref.stem, ref, hyp)]
    refs, hyps = _listing(ref), _listing(hyp)
    common = sorted(set(refs) & set(hyps))
    if not common:
        raise ValueError(f"{ref} and {hyp} have no file or utterance id in common")
    missing = sorted(set(refs) - set(hyps))
    if missing:
        raise ValueError(f"{hyp} lacks {len(missing)} of the references, e.g. {missing[0]}")
    return [Pair(key, refs[key], hyps[key]) for key in common]


def score_pair(
    pair: Pair, metrics: tuple[str, ...] = DEFAULT_METRICS, text: str | None = None
) -> dict:
    """One row of `per_utt.csv`: the key, the delay found, every value of `metrics` (NaN if
    missing) and the reasons of the missing ones; `text` is the reference's transcript. A file
    that cannot be read (empty, NaN samples, not audio) gives a row of NaN with the reason, so
    the rest of an evaluation is still scored and written."""
    from codec.audio import load_audio

    try:
        ref, _ = load_audio(pair.ref, EVAL_RATE)
        hyp, _ = load_audio(pair.hyp, EVAL_RATE)
    except (OSError, ValueError, RuntimeError) as error:
        row = {"key": pair.key, "delay_ms": math.nan}
        row |= {name: math.nan for name in value_names(metrics)}
        return row | {"errors": f"audio: {error}"}
    result = score(ref.mean(axis=0), hyp.mean(axis=0), EVAL_RATE, metrics=metrics, text=text)
    row = {"key": pair.key, "delay_ms": result.delay_ms}
    row |= {name: result.values.get(name, math.nan) for name in value_names(metrics)}
    row["errors"] = "; ".join(f"{k}: {v}" for k, v in result.errors.items())
    return row


def score_pairs(
    pairs: list[Pair],
    workers: int = 1,
    on_done: Callable[[], None] | None = None,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
    texts: dict[str, str] | None = None,
) -> list[dict]:
    """Rows for every pair, in order, scored in `workers` processes; `texts` maps keys to the
    references' transcripts (for WER)."""
    texts = texts or {}
    if workers <= 1:
        rows = []
        for pair in pairs:
            rows.append(score_pair(pair, metrics, texts.get(pair.key)))
            if on_done:
                on_done()
        return rows
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(score_pair, pair, metrics, texts.get(pair.key)) for pair in pairs]
        rows = []
        for future in futures:
            rows.append(future.result())
            if on_done:
                on_done()
        return rows


def summary_stats(values: list[float]) -> dict[str, float | int]:
    """Mean, sample standard deviation, 95% confidence half-width of the mean, and count, over
    the finite values (NaN marks a failure, counted apart as `failed`)."""
    finite = np.array([v for v in values if math.isfinite(v)], dtype=np.float64)
    n = int(finite.size)
    stats: dict[str, float | int] = {"mean": math.nan, "std": math.nan, "ci95": math.nan, "n": n}
    if n:
        stats["mean"] = float(finite.mean())
        stats["std"] = float(finite.std(ddof=1)) if n > 1 else 0.0
        stats["ci95"] = float(_t95(n - 1) * stats["std"] / math.sqrt(n)) if n > 1 else math.nan
    stats["failed"] = len(values) - n
    return stats


def _t95(dof: int) -> float:
    """Two-sided 95% quantile of Student's t with `dof` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.975, dof))


def summarise(rows: list[dict]) -> dict[str, dict]:
    """`summary.json`: one object per metric value, and the delay."""
    names = [name for name in rows[0] if name not in ("key", "delay_ms", "errors")]
    summary = {name: summary_stats([row[name] for row in rows]) for name in names}
    summary["delay_ms"] = summary_stats([row["delay_ms"] for row in rows])
    return summary


def summary_markdown(summary: dict[str, dict]) -> str:
    """The summary as a Markdown table."""
    rows = [
        [
            name,
            f"{s['mean']:.3f}",
            f"{s['std']:.3f}",
            f"±{s['ci95']:.3f}",
            str(s["n"]),
            str(s["failed"]),
        ]
        for name, s in summary.items()
    ]
    return markdown_table(["metric", "mean", "std", "95% CI", "n", "failed"], rows)


def write_report(rows: list[dict], summary: dict[str, dict], out: Path) -> None:
    """`per_utt.csv`, `summary.json` and `summary.md` under `out`."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "per_utt.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    from codec.eval.perceptual import package_versions

    report = {**summary, "packages": package_versions()}
    (out / "summary.json").write_text(json.dumps(_nan_to_none(report), indent=2) + "\n")
    (out / "summary.md").write_text(summary_markdown(summary))


def _nan_to_none(value):
    """JSON has no NaN: missing statistics become null."""
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value
