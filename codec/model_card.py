"""What a model checkpoint is, read without torch: its name, config, latency and bitrates.

`codec models` lists the zoo with it in a fraction of a second, where loading each model would
import torch and build every network. The checkpoint (`CodecModel.save`: a torch zip archive)
is read by a restricted unpickler that builds plain containers only: every tensor becomes
`None` (its bytes are never read) and any other class is refused, so nothing in the file is
executed.
"""

from __future__ import annotations

import math
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codec.config import ModelConfig, from_dict

CHECKPOINT_FORMAT = "codec-model"  # CodecModel.save's "format" field


class _Tensor:
    """What the unpickler puts where the checkpoint has a tensor or its storage: nothing."""

    def __new__(cls, *args: Any, **kwargs: Any) -> None:
        return None


class _ConfigUnpickler(pickle.Unpickler):
    """Plain containers, and `None` for torch's tensors; any other class is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return dict
        if module.split(".")[0] == "torch":
            return _Tensor
        raise pickle.UnpicklingError(f"a codec checkpoint holds no {module}.{name}")

    def persistent_load(self, pid: Any) -> None:
        return None


@dataclass
class ModelCard:
    """A checkpoint's name and model config, and what follows from them."""

    name: str
    config: ModelConfig

    @property
    def hop_length(self) -> int:
        """Audio samples per frame."""
        if self.config.backbone == "frame":
            return self.config.frame.hop
        return math.prod(self.config.strides)

    @property
    def delay(self) -> int:
        """Samples the decoder's output runs behind the input (the frame head's overlap)."""
        f = self.config.frame
        return f.synthesis_window - f.hop if self.config.backbone == "frame" else 0

    @property
    def latency_ms(self) -> float:
        return 1000.0 * (self.hop_length + self.delay) / self.config.sample_rate

    @property
    def codebook_sizes(self) -> list[int]:
        q = self.config.quantizer
        size = math.prod(q.levels) if q.kind in ("fsp", "fsq") else q.codebook_size
        return [size] * q.n_stages

    def bitrate(self, n_stages: int) -> float:
        """Bits per second with the first `n_stages` stages."""
        rate = self.config.sample_rate / self.hop_length
        return rate * sum(math.log2(k) for k in self.codebook_sizes[:n_stages])


def read_card(path: str | Path) -> ModelCard:
    """The card of a checkpoint written by `CodecModel.save`; ValueError if it is none."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise ValueError("no data.pkl")
            with archive.open(pickles[0]) as stream:
                checkpoint = _ConfigUnpickler(stream).load()
    except (OSError, ValueError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError) as error:
        raise ValueError(f"{path} is not a codec model checkpoint ({error})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a codec model checkpoint")
    if not isinstance(checkpoint.get("config"), dict):
        raise ValueError(f"{path} is a codec model checkpoint without its config")
    return ModelCard(str(checkpoint.get("name")), from_dict(ModelConfig, checkpoint["config"]))
