"""The experiment configuration: `model:`, `train:` and `optim:` sections of a preset."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from codec.config import ModelConfig, apply_overrides, from_dict, load_preset

MODEL_PARTS = ("encoder", "quantizer", "decoder")  # the top-level modules of a CodecModel


@dataclass
class LossConfig:
    """Weights of the training objective; `adversarial: 0` trains without discriminators."""

    mel: float = 1.0  # multi-scale log-mel L1
    stft: float = 1.0  # multi-resolution STFT (auraloss): spectral convergence + log magnitude
    waveform: float = 0.0  # L1 between the waveforms: the one phase-sensitive term
    quantizer: float = 1.0  # the quantizers' auxiliary losses (normalisation, commitment)
    adversarial: float = 0.0  # generator's adversarial loss (multi-period + multi-scale STFT)
    feature_matching: float = 2.0  # L1 between discriminator features (with adversarial only)
    adversarial_start: int = 0  # step from which the discriminators train and count


@dataclass
class DiscriminatorConfig:
    """The discriminators of the adversarial phase: one per waveform period, one per STFT size.
    On a CPU the STFT ones cost most (their 2-D convolutions over frames x bins): `stft_channels`
    trades their capacity for time (`docs/models.md` measures it)."""

    periods: list[int] = field(default_factory=lambda: [2, 3, 5, 7, 11])
    n_ffts: list[int] = field(default_factory=lambda: [1024, 512, 256])
    stft_channels: int = 32


@dataclass
class TrainConfig:
    """How long and on what the model trains, and how the run is logged and saved."""

    batch_size: int = 8
    segment_seconds: float = 1.0  # random crop length
    max_steps: int = 100_000
    max_minutes: float = 0.0  # > 0: a wall-clock budget; the run ends cleanly when it is spent
    seed: int = 0
    data: str = "auto"  # memory: the corpus in one tensor on the device; disk: a DataLoader
    memory_gb: float = 4.0  # auto holds the corpus in memory when its int16 audio fits this
    num_workers: int = 2  # data-loading processes (disk) or file-decoding threads (memory)
    warmup_steps: int = 1000
    grad_clip: float = 1.0
    amp: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    ema_decay: float = 0.0  # > 0 keeps an EMA of the weights, used for the final model
    loudness_db: float = -23.0  # crops are scaled to this RMS level (dBFS) ...
    gain_jitter_db: float = 6.0  # ... plus a uniform random gain within +-this
    log_every: int = 50
    valid_every: int = 1000
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    valid_utterances: int = 8  # held-out utterances scored at each validation
    init_optimizer: bool = False  # --init-from a training checkpoint: its AdamW moments too
    # --init-from copies only these parts (encoder, quantizer, decoder); empty: the whole model.
    # [encoder, decoder]: a trained backbone around a fresh quantizer of any kind or size
    init_modules: list[str] = field(default_factory=list)
    compile_seconds: float = 600.0  # VP: audio used to compile the codebooks at the end
    entropy_seconds: float = 1800.0  # audio whose codes fit the entropy tables at the end
    losses: LossConfig = field(default_factory=LossConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.init_modules) - set(MODEL_PARTS))
        if unknown:
            raise ValueError(f"train.init_modules: {unknown} are not parts of the model; "
                             f"choose from {list(MODEL_PARTS)}")  # fmt: skip
        if self.init_optimizer and self.init_modules:
            raise ValueError("train.init_optimizer carries the moments of the whole model: "
                             "leave it off with train.init_modules")  # fmt: skip


@dataclass
class OptimConfig:
    """AdamW with linear warm-up, then a cosine decay to `min_lr_ratio * lr` over the last
    `decay_fraction` of the run (1: the whole run; 0.2: warm-up, stable, decay, where the run
    can be continued from the start of its decay, `train.init_optimizer`)."""

    lr: float = 3e-4
    betas: list[float] = field(default_factory=lambda: [0.8, 0.99])
    weight_decay: float = 0.01
    min_lr_ratio: float = 0.1
    decay_fraction: float = 1.0
    discriminator_lr: float = 2e-4

    def __post_init__(self) -> None:
        if not 0 < self.decay_fraction <= 1:
            raise ValueError(
                f"optim.decay_fraction is the share of the run that decays, in (0, 1]; "
                f"got {self.decay_fraction}"
            )


@dataclass
class ExperimentConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


def parse_sets(sets: list[str]) -> dict[str, Any]:
    """`["optim.lr=3e-4", "train.max_steps=10"]` -> dotted overrides with YAML-typed values."""
    overrides = {}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes key=value (e.g. optim.lr=3e-4), got {item!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def load_experiment(preset: str | Path, sets: list[str] | None = None) -> ExperimentConfig:
    """The preset (with its includes) and `--set` overrides, resolved into dataclasses."""
    data = apply_overrides(load_preset(preset), parse_sets(sets or []))
    return from_dict(ExperimentConfig, data, where="config")


def save_experiment(config: ExperimentConfig, path: Path) -> None:
    """Write the resolved configuration as YAML (it loads back with `load_experiment`)."""
    path.write_text(yaml.safe_dump(dataclasses.asdict(config), sort_keys=False))
