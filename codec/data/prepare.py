"""Data preparation: corpora on disk -> Kaldi data directories (wav.scp, utt2spk, spk2utt).

Pure functions; `recipes/utils/prepare.py` is their command-line wrapper.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import soundfile as sf

from codec.audio import AUDIO_SUFFIXES, find_files


def write_data_dir(
    out: Path, entries: Iterable[tuple[str, Path, str]], texts: dict[str, str] | None = None
) -> int:
    """Write wav.scp, utt2spk and spk2utt (sorted by utterance id) for (utt, path, speaker),
    and `text` for the utterances that `texts` has a transcript of."""
    rows = sorted(entries)
    if not rows:
        raise ValueError(f"no utterances for {out}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "wav.scp").write_text("".join(f"{utt} {path.resolve()}\n" for utt, path, _ in rows))
    (out / "utt2spk").write_text("".join(f"{utt} {spk}\n" for utt, _, spk in rows))
    speakers = defaultdict(list)
    for utt, _, spk in rows:
        speakers[spk].append(utt)
    (out / "spk2utt").write_text(
        "".join(f"{spk} {' '.join(utts)}\n" for spk, utts in sorted(speakers.items()))
    )
    lines = [f"{utt} {texts[utt]}\n" for utt, _, _ in rows if texts and utt in texts]
    if lines:
        (out / "text").write_text("".join(lines), encoding="utf-8")
    return len(rows)


def _bucket(key: str) -> float:
    """A stable number in [0, 1) from a string, for reproducible splits."""
    return int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 2**32


def prepare_librispeech_style(root: Path, out: Path, suffix: str = ".flac") -> int:
    """LibriSpeech / LibriTTS layout `speaker/chapter/utt.ext`: one data dir for a part."""
    entries = []
    for path in find_files(root, (suffix,)):
        speaker = path.relative_to(root).parts[0]
        entries.append(
            (
                f"{speaker}-{path.stem}" if not path.stem.startswith(speaker) else path.stem,
                path,
                speaker,
            )
        )
    return write_data_dir(out, entries)


def prepare_vctk(
    root: Path, out_root: Path, test_speakers: int = 4, dev_speakers: int = 4
) -> dict[str, int]:
    """VCTK 0.92 (`wav48_silence_trimmed/pXXX/pXXX_YYY_mic1.flac`): mic1 only, split by speaker
    (the last speakers in sorted order go to test, the ones before to dev)."""
    files = [p for p in find_files(root, (".flac",)) if p.stem.endswith("_mic1")]
    speakers = sorted({p.parent.name for p in files})
    test, dev = (
        set(speakers[-test_speakers:]),
        set(speakers[-test_speakers - dev_speakers : -test_speakers]),
    )
    split = {"train": [], "dev": [], "test": []}
    for path in files:
        spk = path.parent.name
        name = "test" if spk in test else "dev" if spk in dev else "train"
        split[name].append((path.stem.removesuffix("_mic1"), path, spk))
    return {name: write_data_dir(out_root / name, entries) for name, entries in split.items()}


def prepare_folder(
    audio_dir: Path, out_root: Path, dev_share: float = 0.05, test_share: float = 0.05
) -> dict[str, int]:
    """Any folder of audio files. When files sit in per-speaker subfolders (two or more), whole
    speakers go to dev and test; otherwise files are split by a hash of their path."""
    files = find_files(audio_dir, AUDIO_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{audio_dir} holds no audio files ({', '.join(AUDIO_SUFFIXES)})")
    speaker_of = {
        p: (p.relative_to(audio_dir).parts[0] if len(p.relative_to(audio_dir).parts) > 1 else "spk")
        for p in files
    }
    by_speaker = len(set(speaker_of.values())) >= 3
    split = {"train": [], "dev": [], "test": []}
    for path in files:
        rel = path.relative_to(audio_dir).with_suffix("")
        utt = "-".join(rel.parts)
        spk = speaker_of[path]
        u = _bucket(spk if by_speaker else str(rel))
        name = "test" if u < test_share else "dev" if u < test_share + dev_share else "train"
        split[name].append((utt, path, spk))
    if by_speaker and not (split["dev"] and split["test"]):  # too few speakers for the shares
        ordered = sorted(set(speaker_of.values()))
        held = {"test": ordered[-1], "dev": ordered[-2]}
        split = {"train": [], "dev": [], "test": []}
        for path in files:
            rel = path.relative_to(audio_dir).with_suffix("")
            spk = speaker_of[path]
            name = next((k for k, v in held.items() if v == spk), "train")
            split[name].append(("-".join(rel.parts), path, spk))
    for name in ("dev", "test"):
        if not split[name]:  # tiny folders: take one file so every split exists
            split[name].append(split["train"].pop())
    return {name: write_data_dir(out_root / name, entries) for name, entries in split.items()}


DEBIAN_SKIP = ("/silence/", "beep", "2tone", "-x-")  # pure silence, jingles, creature noises
DEBIAN_SPEECH_ONLY = {"hedgewars-data": "/Sounds/voices/"}  # the rest is music and effects


def decode_g722(files: list[Path], out_dir: Path) -> list[Path]:
    """Headerless G.722 prompts -> 16 kHz WAV files (with the imageio-ffmpeg wheel's ffmpeg,
    or ffmpeg on PATH)."""
    import shutil
    import subprocess

    try:
        import imageio_ffmpeg

        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    except ImportError:
        ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise FileNotFoundError(
            "decoding G.722 needs ffmpeg: pip install imageio-ffmpeg (or apt-get install ffmpeg)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    decoded = []
    for path in files:
        target = out_dir / f"{path.parent.name}_{path.stem}.wav"
        if not target.exists():
            command = [
                ffmpeg,
                "-loglevel",
                "error",
                "-y",
                "-f",
                "g722",
                "-i",
                str(path),
                "-ar",
                "16000",
                "-ac",
                "1",
                str(target),
            ]
            subprocess.run(command, check=True)
        decoded.append(target)
    return decoded


def read_asterisk_transcripts(path: Path) -> dict[str, str]:
    """Prompt name (its path below the language folder, without suffix) -> transcript, from
    the `core-sounds-<lang>.txt.gz` of a Debian package asterisk-core-sounds-<lang>."""
    import gzip

    texts = {}
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as stream:
        for line in stream:
            name, colon, text = line.partition(":")
            if colon and not line.startswith(";") and text.strip():
                texts[name.strip()] = " ".join(text.split())
    return texts


def prepare_debian_speech(
    extracted: dict[str, Path],
    work: Path,
    out_root: Path,
    test_packages: tuple[str, ...] = (),
    max_files: int = 0,
    max_test_files: int = 0,
    skip: tuple[str, ...] = (),
    transcripts: dict[str, Path] | None = None,
) -> dict[str, int]:
    """Speech from Debian packages (see shared/data/README.md) unpacked with `dpkg -x`, one
    directory per package. Packages named in `test_packages` are held out as the test set (a
    speaker and language unseen in training); dev takes 5% of the rest by hash; with no test
    package, test also takes 5% by hash. `max_files` > 0 keeps that many files per package,
    `max_test_files` > 0 that many of each test package (a hash-chosen, reproducible subset).
    Files whose path holds one of `skip` are left out (e.g. `/fr/` keeps a held-out language
    out of multilingual packages). `transcripts` maps an Asterisk package to its prompts'
    transcript file (`read_asterisk_transcripts`): each split then gets a Kaldi `text`."""
    split = {"train": [], "dev": [], "test": []}
    texts: dict[str, str] = {}
    for package, root in sorted(extracted.items()):
        only = DEBIAN_SPEECH_ONLY.get(package, "")
        files = [
            p
            for p in find_files(root, (*AUDIO_SUFFIXES, ".g722"))
            if only in str(p) and not any(s in str(p) for s in (*DEBIAN_SKIP, *skip))
        ]
        keep = max_test_files if package in test_packages and max_test_files else max_files
        files = sorted(files, key=lambda p: _bucket(str(p.relative_to(root))))[: keep or None]
        g722 = [p for p in files if p.suffix == ".g722"]
        decoded = decode_g722(g722, work / package)
        prompt = {wav: _prompt_name(p) for wav, p in zip(decoded, g722, strict=True)}
        prompt |= {p: _prompt_name(p) for p in files if p.suffix != ".g722"}
        files = [p for p in files if p.suffix != ".g722"] + decoded
        files = [p for p in files if sf.info(str(p)).frames > 0]  # a few prompts are empty
        speaker = package.removesuffix("-g722").replace("asterisk-core-sounds-", "asterisk-")
        said = (
            read_asterisk_transcripts(transcripts[package])
            if package in (transcripts or {})
            else {}
        )
        for path in files:
            name_in_package = (
                path.stem
                if path.parent.is_relative_to(work)
                else path.relative_to(root).with_suffix("")
            )
            utt = f"{speaker}-{'_'.join(Path(name_in_package).parts)}".replace(" ", "_")
            if prompt[path] in said:
                texts[utt] = said[prompt[path]]
            u = _bucket(utt)
            if package in test_packages or (not test_packages and u < 0.05):
                name = "test"
            else:
                name = "dev" if u > 0.95 else "train"
            split[name].append((utt, path, speaker))
    if not split["train"]:
        raise ValueError("no training utterances: give at least one package that is not held out")
    for name in ("dev", "test"):
        if not split[name]:
            split[name].append(split["train"].pop())
    return {
        name: write_data_dir(out_root / name, entries, texts) for name, entries in split.items()
    }


def _prompt_name(path: Path) -> str:
    """An Asterisk prompt's name: its path below the language folder (`.../sounds/<lang>/`),
    without suffix, e.g. `digits/1`."""
    parts = path.with_suffix("").parts
    below = parts[parts.index("sounds") + 2 :] if "sounds" in parts else parts[-1:]
    return "/".join(below)
