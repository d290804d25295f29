"""Model configuration: dataclasses built from the `model:` section of a YAML preset."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

PRESET_DIR = Path(__file__).parent / "presets"


@dataclass
class VPConfig:
    """Vector perturbation (kind `vp`); see `codec.quantizers.vp`."""

    cluster_size_rate: float = 4.0  # queue of K * round(d * rate) latents
    k4nn: int = 8  # the k of the kNN density estimate
    eta: float = 1.2  # radius scale: estimate_eta gives 1.196 for d=4, K=1000, rate 4, k 8
    turnover_steps: int = 500  # the queue is refreshed about this often
    mh_accept: bool = True  # False: accept every proposal (ablation)
    rebuild_every: int = 10  # CPU: steps between KD-tree rebuilds


@dataclass
class VQConfig:
    """EMA vector quantization (kind `vq`); see `codec.quantizers.vq`."""

    decay: float = 0.99
    commitment: float = 0.25
    dead_fraction: float = 0.01  # restart codes used less than this share of the mean


@dataclass
class QuantizerConfig:
    """The residual quantizer: `n_stages` stages of one family.

    Scalar families (`fsp`, `fsq`) take `levels` per dimension (K = their product); vector
    families (`vq`, `vp`) take `dim` and `codebook_size`.
    """

    kind: str = "fsp"  # fsp | fsq | vq | vp
    n_stages: int = 12
    levels: list[int] = field(default_factory=lambda: [8, 5, 5, 5])
    dim: int = 4
    codebook_size: int = 1000
    activation: str = "tanh"  # fsp/fsq: the CDF squashing
    quantize_rate: float = 0.5  # fsp: share of elements quantized (vs perturbed) in training
    norm_loss: bool = True  # fsp/vp: mean/variance loss on the stage latent
    dropout: float = 0.5  # chance that a training example uses a random number of leading stages
    refine_loss: bool = False  # each stage is asked to shrink the residual it is given
    vp: VPConfig = field(default_factory=VPConfig)
    vq: VQConfig = field(default_factory=VQConfig)


@dataclass
class FrameConfig:
    """The frame-rate backbone (`backbone: frame`): a causal STFT, ConvNeXt blocks at the frame
    rate, a Fourier head. Latency is `synthesis_window` samples (hop + the synthesis overlap)."""

    hop: int = 320  # samples per frame
    analysis_window: int = 640  # encoder: Hann window over the past, ending at the frame's end
    synthesis_window: int = 480  # decoder: hop + overlap, in (hop, 2 hop]
    width: int = 256  # channels of the ConvNeXt blocks
    encoder_blocks: int = 6
    decoder_blocks: int = 6
    kernel_size: int = 7  # depthwise conv over the current and past frames
    expansion: int = 3  # MLP width / block width
    # what the encoder sees of each bin (CausalSTFT): any of "compressed" (real and imaginary
    # parts, the magnitude raised to `compression`), "log_magnitude" (floored at `log_floor`),
    # "phase" (cos and sin of the bin's phase), "phase_advance" (cos and sin of its phase turn
    # over the last hop beyond its centre frequency's)
    features: list[str] = field(default_factory=lambda: ["compressed"])
    compression: float = 0.3  # the analysis spectrum's magnitude is raised to this power
    log_floor: float = 4e-7  # of the orthonormal DFT's magnitude (about -128 dB of full scale)
    final_norm: bool = True  # a LayerNorm before each ConvNeXt stack's last linear map
    head: str = "polar"  # polar: log magnitude + phase per bin; complex: compressed real + imag
    accumulate_phase: bool = False  # the polar head predicts phase advances, summed over frames
    phase_gradient: str = "sum"  # sum: an advance learns from every later frame; frame: its own


BACKBONES = ("seanet", "frame")


@dataclass
class ModelConfig:
    """A causal encoder/decoder around a residual quantizer: the SEANet (`channels`, `strides`,
    ...: convolutions at the audio rate) or the frame-rate backbone (`frame`)."""

    sample_rate: int = 16000
    backbone: str = "seanet"  # seanet | frame
    channels: int = 32  # width of the first conv; doubles after each down-sampling
    strides: list[int] = field(default_factory=lambda: [2, 4, 5, 8])  # product = hop length
    latent_dim: int = 128
    activation: str = "elu"
    kernel_size: int = 7
    residual_kernel_size: int = 3
    dilations: list[int] = field(default_factory=lambda: [1, 3, 9])
    frame: FrameConfig = field(default_factory=FrameConfig)
    quantizer: QuantizerConfig = field(default_factory=QuantizerConfig)


def from_dict(cls: type, data: dict[str, Any], where: str = "model") -> Any:
    """Build dataclass `cls` from a nested dict, rejecting unknown keys by their dotted name."""
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ValueError(f"unknown key {where}.{unknown[0]}: known keys are {known}")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        is_config = dataclasses.is_dataclass(hint)
        key = f"{where}.{name}"
        kwargs[name] = from_dict(hint, value, key) if is_config else _coerce(hint, value, key)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    """Numbers for number fields (YAML reads `1e-3` as a string), with an error naming the key."""
    if hint is float and isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"{where} must be a number, got {value!r}") from None
    if hint is int and not isinstance(value, int):
        raise ValueError(f"{where} must be an integer, got {value!r}")
    if hint is bool and not isinstance(value, bool):
        raise ValueError(f"{where} must be true or false, got {value!r}")
    return value


def preset_path(name_or_path: str | Path) -> Path:
    """A preset's YAML file: a file path, or the name of one shipped in `codec/presets/`."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    shipped = PRESET_DIR / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in PRESET_DIR.glob("*.yaml")))
    raise FileNotFoundError(f"no preset {str(name_or_path)!r}: give a YAML file or one of {names}")


def _merge(base: dict, update: dict) -> dict:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_preset(name_or_path: str | Path) -> dict[str, Any]:
    """The preset as a dict; an `include: other` preset (a name, or a path relative to this
    file) is loaded first and this file merged over it."""
    path = preset_path(name_or_path)
    data = yaml.safe_load(path.read_text()) or {}
    include = data.pop("include", None)
    if include is None:
        return data
    relative = path.parent / str(include)
    base = load_preset(relative if relative.is_file() else include)
    return _merge(base, data)


def apply_overrides(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys (`{"model.channels": 16}`) in a copy of a nested dict."""
    result = _merge(config, {})
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = result
        for key in parents:
            node[key] = dict(node.get(key) or {})
            node = node[key]
        node[leaf] = value
    return result
