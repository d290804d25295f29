"""Classical codecs a user would pick instead, run through their reference command-line tools.

Opus (libopus via opus-tools, VoIP application, 20 ms frames) and Codec2 (8 kHz input, as it
requires). Each `Baseline` codes 16 kHz mono audio and returns the decoded audio at 16 kHz and
the size of what it stored; missing tools are an error that names the install command.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

INSTALL_HINT = (
    "run tools/install_baselines.sh (it installs the Debian packages opus-tools and codec2)"
)
OPUS_APPLICATION_CTL, OPUS_APPLICATION_VOIP = 4000, 2048
OPUS_KBPS = (6, 8, 12, 16)
CODEC2_MODES = {"3200": (3.2, 20.0), "1600": (1.6, 40.0), "700C": (0.7, 40.0)}  # kbps, frame ms
CODEC2_RATE = 8000
TOOLS = {"opus": ("opusenc", "opusdec"), "codec2": ("c2enc", "c2dec")}  # codec -> its commands


class BaselineToolMissing(RuntimeError):
    """A classical codec's command-line tool is not installed."""


def require(*tools: str) -> None:
    """Raise `BaselineToolMissing` naming the first tool not on PATH and how to install it."""
    for tool in tools:
        if shutil.which(tool) is None:
            raise BaselineToolMissing(f"{tool} is not installed: {INSTALL_HINT}")


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{command[0]} failed: {done.stderr.strip() or done.stdout.strip()}")


@dataclass(frozen=True)
class Baseline:
    """One classical codec at one setting."""

    codec: str  # "opus" or "codec2"
    setting: str  # "6kbps", "3200", "700C"
    nominal_kbps: float
    algorithmic_latency_ms: float  # frame plus look-ahead

    @property
    def name(self) -> str:
        """How `--baselines` names it: `opus-6kbps`, `codec2-3200`."""
        return f"{self.codec}-{self.setting}"

    def code(self, wav: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Encode and decode mono `wav`; returns the decoded audio at `sample_rate` and the
        size of the encoded file in bytes."""
        require(*TOOLS[self.codec])
        with tempfile.TemporaryDirectory(prefix="codec-baseline-") as tmp:
            if self.codec == "opus":
                return self._opus(wav, sample_rate, Path(tmp))
            return self._codec2(wav, sample_rate, Path(tmp))

    def _opus(self, wav: np.ndarray, rate: int, tmp: Path) -> tuple[np.ndarray, int]:
        sf.write(tmp / "in.wav", wav, rate, subtype="PCM_16")
        kbps = self.setting.removesuffix("kbps")
        ctl = f"{OPUS_APPLICATION_CTL}={OPUS_APPLICATION_VOIP}"
        _run(
            "opusenc",
            "--quiet",
            "--bitrate",
            kbps,
            "--framesize",
            "20",
            "--set-ctl-int",
            ctl,
            str(tmp / "in.wav"),
            str(tmp / "x.opus"),
        )
        _run("opusdec", "--quiet", "--rate", str(rate), str(tmp / "x.opus"), str(tmp / "out.wav"))
        decoded, _ = sf.read(tmp / "out.wav", dtype="float32")
        return decoded, (tmp / "x.opus").stat().st_size

    def _codec2(self, wav: np.ndarray, rate: int, tmp: Path) -> tuple[np.ndarray, int]:
        narrow = soxr.resample(wav, rate, CODEC2_RATE, quality="HQ")
        pcm = (np.clip(narrow, -1, 1) * 32767).astype("<i2")
        (tmp / "in.raw").write_bytes(pcm.tobytes())
        _run("c2enc", self.setting, str(tmp / "in.raw"), str(tmp / "x.bit"))
        _run("c2dec", self.setting, str(tmp / "x.bit"), str(tmp / "out.raw"))
        decoded = (
            np.frombuffer((tmp / "out.raw").read_bytes(), dtype="<i2").astype(np.float32) / 32768
        )
        return soxr.resample(decoded, CODEC2_RATE, rate, quality="HQ"), (
            tmp / "x.bit"
        ).stat().st_size


def tool_versions(codecs: set[str]) -> dict[str, str]:
    """What the baselines of `codecs` ("opus", "codec2") run, for reports: opus-tools with its
    libopus, and Codec2."""
    versions = {}
    if "opus" in codecs:
        opus = subprocess.run(["opusenc", "--version"], capture_output=True, text=True).stdout
        versions["opus"] = opus.splitlines()[0] if opus else "unknown"
    if "codec2" in codecs:
        codec2 = (
            subprocess.run(
                ["dpkg-query", "-W", "-f", "${Version}", "codec2"], capture_output=True, text=True
            ).stdout
            if shutil.which("dpkg-query")
            else ""
        )
        versions["codec2"] = f"codec2 {codec2 or '(version unknown)'}"
    return versions


def tools_for(chosen: list[Baseline]) -> tuple[str, ...]:
    """The command-line tools that `chosen` baselines run."""
    return tuple(t for codec in dict.fromkeys(b.codec for b in chosen) for t in TOOLS[codec])


def baselines() -> list[Baseline]:
    """Opus at 6, 8, 12, 16 kbps and Codec2 at 3200, 1600 and 700C."""
    opus = [Baseline("opus", f"{k}kbps", float(k), 26.5) for k in OPUS_KBPS]
    codec2 = [
        Baseline("codec2", mode, kbps, frame_ms) for mode, (kbps, frame_ms) in CODEC2_MODES.items()
    ]
    return opus + codec2


def select_baselines(spec: str) -> list[Baseline]:
    """The baselines `spec` names: `all`, `none`, or a comma list of names (`opus-6kbps,
    codec2-3200`: `Baseline.name`), in the order of `baselines()`. Raises ValueError listing
    the names for one it does not know."""
    known = {b.name: b for b in baselines()}
    if spec.strip() == "all":
        return list(known.values())
    if spec.strip() == "none":
        return []
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise ValueError(
            f"unknown baseline {', '.join(unknown) or repr(spec)}: give all, none, or a comma "
            f"list of {', '.join(known)}"
        )
    return [b for name, b in known.items() if name in names]
