"""Shared test helpers: random chunkings for streaming-vs-offline checks, test data, scripts."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

DATA = Path(__file__).parent / "data"
CODEC = str(Path(sys.executable).with_name("codec"))  # the console script of this environment


def random_chunk_sizes(total: int, rng: np.random.Generator, max_size: int) -> list[int]:
    """Sizes that sum to `total`: ones, zeros, and arbitrary lengths up to `max_size`."""
    sizes = [1, 0, 1]
    while sum(sizes) < total:
        kind = rng.integers(4)
        sizes.append(1 if kind == 0 else int(rng.integers(1, max_size + 1)))
    sizes[-1] -= sum(sizes) - total
    return sizes


def run_chunked(fn: Callable[[Tensor], Tensor], x: Tensor, sizes: list[int]) -> Tensor:
    """Apply `fn` to consecutive chunks of `x` along the last axis and concatenate the outputs."""
    outputs, start = [], 0
    for size in sizes:
        outputs.append(fn(x[..., start : start + size]))
        start += size
    return torch.cat(outputs, dim=-1)


def load_speech() -> Tensor:
    """The committed real-speech sample as `[1, 1, T]` float32 at 16 kHz."""
    wav, sample_rate = sf.read(DATA / "speech_en.flac", dtype="float32")
    assert sample_rate == 16000
    return torch.from_numpy(wav).view(1, 1, -1)


def save_tiny_frame_model(path: Path) -> str:
    """The `tiny-frame` preset trained for 40 steps on the speech sample, saved to `path`: an
    untrained Fourier head is about 25 dB too loud, where float rounding outgrows 16-bit
    rounding; a few steps bring it to speech levels. Returns the path as a string."""
    import codec
    from codec.spectral import MultiScaleMelDistance

    torch.manual_seed(0)
    model = codec.build_model("tiny-frame").train()
    mel, speech = MultiScaleMelDistance(16000), load_speech()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        starts = torch.randint(0, speech.shape[-1] - 6400, (4,))
        crops = torch.cat([speech[..., s : s + 6400] for s in starts])
        out = model(crops)
        loss = mel(out.audio, crops) + sum(out.losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval().save(path)
    return str(path)


def load_script(path: Path) -> ModuleType:
    """A script of tools/ or bench/ (not a package) imported as a module, to test its parts."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
