"""Batch plumbing for the CLI: which inputs map to which outputs, atomic writes, workers."""

from __future__ import annotations

import io
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import BinaryIO

from codec.audio import find_files

STDIO = "-"
_STOPPED: list[int] = []  # the signal that ended the command, once `stop_on` has caught one


def stop_on(signum: int) -> None:
    """End the command on signal `signum` as SIGINT ends it: an exception raised where the
    program is, so every clean-up runs (no hidden temporary output is left). A library that
    turns it into an error of its own cannot keep a batch going: `run_jobs` stops too."""
    import signal

    def stop(number: int, frame: object) -> None:
        _STOPPED.append(number)
        raise SystemExit(128 + number)

    signal.signal(signum, stop)


def usable_cpus() -> int:
    """CPUs this process may run on (respects `taskset` and container CPU sets)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@dataclass(frozen=True)
class Job:
    """One input and where its output goes (`-` for stdin/stdout)."""

    source: str
    target: str


def _expand(item: str, suffixes: tuple[str, ...]) -> list[tuple[str, Path]]:
    """Inputs named by `item` with the relative output path (without suffix) of each."""
    path = Path(item)
    if item == STDIO:
        return [(STDIO, Path("stdin"))]
    if path.is_dir():
        found = find_files(path, suffixes)
        if not found:
            raise FileNotFoundError(f"{item} holds no {'/'.join(suffixes)} files")
        return [(str(p), p.relative_to(path).with_suffix("")) for p in found]
    if path.name == "wav.scp" or path.suffix == ".scp":
        from codec.data.kaldi import read_wav_scp

        return [(str(p), Path(utt)) for utt, p in read_wav_scp(path).items()]
    return [(item, Path(path.stem))]


def _is_batch_input(item: str) -> bool:
    return item != STDIO and (Path(item).is_dir() or item.endswith(".scp"))


def plan(
    inputs: list[str], out: str | None, suffixes: tuple[str, ...], out_suffix: str
) -> list[Job]:
    """Jobs for the CLI inputs. Without `-o` an output goes beside its input with `out_suffix`.
    With one plain input, `-o` names the output file (`-` for stdout) or a directory (one that
    exists, or any path ending in `/`, made if missing); with several inputs, a directory or a
    wav.scp, `-o` is a directory that keeps the inputs' relative paths (a wav.scp's utterance
    ids, which must stay inside it: an absolute id or one with `..` is refused)."""
    single = len(inputs) == 1 and not _is_batch_input(inputs[0])
    into_folder = (
        out is not None and out != STDIO and (out.endswith(("/", os.sep)) or Path(out).is_dir())
    )
    jobs = []
    for item in inputs:
        for source, relative in _expand(item, suffixes):
            if out is None:
                if source == STDIO:
                    raise ValueError("reading stdin needs -o (a file, or - for stdout)")
                target = str(Path(source).with_suffix(out_suffix))
            elif single and not into_folder:
                target = out
            else:
                if relative.is_absolute() or ".." in relative.parts:
                    raise ValueError(
                        f"{source}: its name {str(relative)!r} would be written outside {out}; "
                        "ids in a wav.scp must be relative names without '..'"
                    )
                target = str(Path(out) / relative.with_suffix(out_suffix))
            jobs.append(Job(source, target))
    targets = [job.target for job in jobs if job.target != STDIO]
    clash = next((t for t in targets if targets.count(t) > 1), None)
    if clash:
        raise ValueError(f"two inputs would both be written to {clash}; give them distinct names")
    for job in jobs:
        if job.target != STDIO and Path(job.target).resolve() == Path(job.source).resolve():
            raise ValueError(f"{job.source} would be overwritten by its own output")
    if STDIO in (job.target for job in jobs) and len(jobs) > 1:
        raise ValueError("only a single input can be written to stdout")
    return jobs


@contextmanager
def atomic_output(target: str, force: bool) -> Iterator[BinaryIO]:
    """A binary stream for `target`: for `-`, a buffer copied to stdout on success (audio
    headers need a seekable file); else a temporary file beside `target`, renamed over it only
    on success. An existing `target` needs `force`, and is replaced only if a regular file
    (never a device, a FIFO or a folder)."""
    if target == STDIO:
        buffer = io.BytesIO()
        yield buffer
        sys.stdout.buffer.write(buffer.getvalue())
        sys.stdout.buffer.flush()
        return
    path = Path(target)
    if path.exists() and not path.is_file():
        raise FileExistsError(f"{target} exists and is not a regular file: give another -o")
    if path.exists() and not force:
        raise FileExistsError(f"{target} exists; pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    # hidden beside the output, named after it but short enough for any legal output name
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:64]}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # as a plain open() would create it, not mkstemp's 0600
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def open_input(source: str) -> Iterator[BinaryIO | str]:
    """A path for files, a seekable in-memory copy for stdin (libsndfile needs to seek)."""
    if source != STDIO:
        yield source
        return
    from codec.audio import read_stdin_bytes

    yield read_stdin_bytes(sys.stdin.buffer)


Worker = Callable[[Job], str]


def run_jobs(
    jobs: list[Job], worker: Worker, n_workers: int, initializer: Callable[[], None], describe: str
) -> int:
    """Run `worker` on every job, in `n_workers` processes when more than one, with a progress
    bar for batches. A failing job prints one line and the rest go on. Returns the number failed."""
    from tqdm import tqdm

    failed = 0

    def report(job: Job, error: BaseException) -> None:
        nonlocal failed
        failed += 1
        message = str(error) if job.source in str(error) else f"{job.source}: {error}"
        tqdm.write(f"error: {message}", file=sys.stderr)

    bar = tqdm(
        total=len(jobs),
        desc=describe,
        unit="file",
        disable=True if len(jobs) < 2 else None,
        file=sys.stderr,
    )
    if n_workers <= 1 or len(jobs) < 2:
        initializer()
        for job in jobs:
            try:
                worker(job)
            except Exception as error:  # noqa: BLE001  (one bad file must not stop a batch)
                if _STOPPED:  # the signal's exit, turned into an error by a library
                    raise SystemExit(128 + _STOPPED[0]) from None
                report(job, error)
            bar.update()
    else:
        spawn = get_context("spawn")  # forking a process that runs torch threads can hang
        with ProcessPoolExecutor(n_workers, mp_context=spawn, initializer=initializer) as pool:
            futures = {pool.submit(worker, job): job for job in jobs}
            for future in as_completed(futures):
                try:
                    future.result()
                except Exception as error:  # noqa: BLE001
                    report(futures[future], error)
                bar.update()
    bar.close()
    return failed
