"""CodecModel: causal encoder -> residual quantizer -> causal decoder; build, save, load."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import codec
from codec.config import BACKBONES, ModelConfig, apply_overrides, from_dict, load_preset
from codec.conv import StreamingConv1d, StreamingConvTranspose1d, folded_state_dict, set_weight_norm
from codec.decoder import SEANetDecoder
from codec.encoder import SEANetEncoder
from codec.entropy import EntropyModel
from codec.frame_decoder import FrameDecoder
from codec.frame_encoder import FrameEncoder
from codec.model_card import CHECKPOINT_FORMAT, read_card
from codec.quantizers import build_quantizer
from codec.runtime import flush_length
from codec.streaming import StreamingModule

CHECKPOINT_VERSION = 1


@dataclass
class CodecOutput:
    """The training forward pass: reconstruction `[B, 1, T]`, codes `[B, n_q, frames]`, the
    quantizer's auxiliary losses and per-stage statistics."""

    audio: Tensor
    codes: Tensor
    losses: dict[str, Tensor]
    stats: dict[str, float]


BACKBONE_CLASSES = {"seanet": (SEANetEncoder, SEANetDecoder), "frame": (FrameEncoder, FrameDecoder)}


class CodecModel(StreamingModule):
    """Audio `[B, 1, T]` at `sample_rate` <-> codes `[B, n_q, frames]` at `frame_rate`.

    Inside `with model.streaming(batch_size):`, `encode` and `decode` take consecutive chunks of
    any length and return what those chunks complete: the codes and audio of offline
    processing, to float rounding (which, rarely, tips a code at a near-tie). A streamed
    decoder's audio runs `delay` samples behind (0 for the SEANet); offline, `encode` pads the
    end by `delay` and `decode` drops the first `delay` samples, so input and output align.
    """

    def __init__(self, cfg: ModelConfig, name: str | None = None) -> None:
        super().__init__()
        if cfg.backbone not in BACKBONE_CLASSES:
            raise ValueError(
                f"unknown model.backbone {cfg.backbone!r}: choose one of {', '.join(BACKBONES)}"
            )
        encoder, decoder = BACKBONE_CLASSES[cfg.backbone]
        self.config = cfg
        self.name = name
        self.encoder = encoder(cfg)
        self.quantizer = build_quantizer(cfg.quantizer, cfg.latent_dim)
        self.decoder = decoder(cfg)
        self.delay: int = self.decoder.delay
        self.entropy: EntropyModel | None = None  # fitted by `fit_entropy`, saved with the model

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        """Audio samples per frame."""
        return self.encoder.hop_length

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.hop_length

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency: a frame is coded once its last sample has arrived, and its
        audio is complete `delay` samples later."""
        return 1000.0 * (self.hop_length + self.delay) / self.sample_rate

    @property
    def num_stages(self) -> int:
        return self.quantizer.num_stages

    def bitrate(self, n_stages: int | None = None) -> float:
        """Bits per second with the first `n_stages` stages (all by default)."""
        n = self.num_stages if n_stages is None else n_stages
        return self.frame_rate * sum(math.log2(k) for k in self.quantizer.codebook_sizes[:n])

    def _pad_to_frames(self, wav: Tensor) -> Tensor:
        """Offline, zero-pad the end by `delay` and to whole frames so no audio is dropped;
        streaming, a partial frame waits in the encoder's state for the next chunk instead."""
        if self.is_streaming:
            return wav
        return F.pad(wav, (0, flush_length(wav.shape[-1], self.delay, self.hop_length)))

    def encode(self, wav: Tensor, n_stages: int | None = None) -> Tensor:
        """`wav`: `[B, 1, T]` -> codes `[B, n_stages, ceil(T / hop)]` int64 (streaming: the frames
        this chunk completes, possibly none)."""
        latent = self.encoder(self._pad_to_frames(wav))
        if latent.shape[-1] == 0:
            n = self.num_stages if n_stages is None else n_stages
            return torch.zeros(wav.shape[0], n, 0, dtype=torch.long, device=wav.device)
        return self.quantizer.encode(latent, n_stages)

    def decode(self, codes: Tensor) -> Tensor:
        """codes `[B, n, frames]` (the first `n` stages) -> audio `[B, 1, frames * hop - delay]`
        (streaming: `[B, 1, frames * hop]`, `delay` samples late)."""
        if codes.shape[-1] == 0:
            return torch.zeros(codes.shape[0], 1, 0, device=codes.device)
        audio = self.decoder(self.quantizer.decode(codes))
        return audio if self.is_streaming else audio[..., self.delay :]

    def forward(self, wav: Tensor) -> CodecOutput:
        """Training pass on `[B, 1, T]`: the reconstruction is trimmed to `T` samples."""
        result = self.quantizer(self.encoder(self._pad_to_frames(wav)))
        audio = self.decoder(result.z)[..., self.delay : self.delay + wav.shape[-1]]
        return CodecOutput(audio, result.codes, result.losses, result.stats)

    @torch.no_grad()
    def compile_codebooks(self, wavs: Iterable[Tensor]) -> None:
        """Fit the codebooks of VP stages on the latents of `wavs` (each `[B, 1, T]`) and their
        queues; needed once after training before a VP model can encode. Others are unchanged."""
        device = next(self.parameters()).device
        latents = [self.encoder(self._pad_to_frames(wav.to(device))) for wav in wavs]
        if not latents:
            raise ValueError("compile_codebooks needs at least one batch of audio")
        rows = torch.cat([z.transpose(0, 1).reshape(z.shape[1], -1) for z in latents], dim=1)
        self.quantizer.compile_codebooks(rows[None])

    @torch.no_grad()
    def fit_entropy(self, wavs: Iterable[Tensor]) -> EntropyModel:
        """Fit the entropy-coding tables (`codec.entropy`) on the codes of `wavs` (each
        `[B, 1, T]`, every example an utterance), at every stage; sets and returns them."""
        device = next(self.parameters()).device
        codes = (row.cpu().numpy() for wav in wavs for row in self.encode(wav.to(device)))
        self.entropy = EntropyModel.fit(self.quantizer.digit_radices, codes)
        return self.entropy

    def weights_hash(self) -> str:
        """A short SHA-256 of the weights (weight norm folded, key order fixed): token files
        record it, so a file is decoded only by the weights that wrote it."""
        digest = hashlib.sha256()
        for key, tensor in sorted(folded_state_dict(self).items()):
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def set_weight_norm(self, enabled: bool) -> None:
        """Add (training) or fold away (inference, faster) weight norm; outputs do not change."""
        for module in self.modules():
            if isinstance(module, StreamingConv1d):
                set_weight_norm(module.conv, enabled)
            elif isinstance(module, StreamingConvTranspose1d):
                set_weight_norm(module.convtr, enabled)

    def save(self, path: str | Path, precision: str = "fp32", warm_start: bool = False) -> None:
        """Write config and weights (weight norm folded) to one file; load with `load_model`.

        `precision` is how floating-point weights are stored (all load back as fp32):
        "fp32"; "fp16" (half the size); "int8" (about 40% of fp16): each trained matrix in
        int8 with an fp16 scale per output row, other tensors in fp16; on the v7 frame
        codec as good as fp32 (docs/models.md, "How models are stored").

        `warm_start` writes an int8 file only for starting training from (a campaign line's
        state): neither the fixed transforms (rebuilt from the config) nor the entropy tables
        (training fits new ones)."""
        if precision not in ("fp32", "fp16", "int8"):
            raise ValueError(f"precision {precision!r}: use fp32, fp16 or int8")
        precision = "int8" if warm_start else precision
        state = folded_state_dict(self)
        scales = {}
        fixed = {name for name, p in self.named_parameters() if not p.requires_grad}
        if warm_start:
            state = {k: v for k, v in state.items() if k not in fixed}
        if precision == "int8":  # trained matrices only: transforms and buffers stay fp16
            exact = fixed | {name for name, _ in self.named_buffers()}
            for name, value in list(state.items()):
                if name not in exact and value.is_floating_point() and value.dim() >= 2:
                    rows = value.reshape(value.shape[0], -1)
                    scale = rows.abs().amax(dim=1).clamp_min(1e-12) / 127
                    state[name] = torch.round(rows / scale[:, None]).to(torch.int8).view_as(value)
                    scales[name] = scale.half()
        checkpoint = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "codec_version": codec.__version__,
            "name": self.name,
            "config": dataclasses.asdict(self.config),
            "state_dict": {
                k: v.cpu().half() if precision != "fp32" and v.is_floating_point() else v.cpu()
                for k, v in state.items()
            },
        }
        if scales:
            checkpoint["int8_scales"] = scales
        if self.entropy is not None and not warm_start:
            checkpoint["entropy"] = self.entropy.state()
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(checkpoint, tmp)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> CodecModel:
        """A model saved by `save`, in inference form (weight norm folded, eval mode)."""
        if not Path(path).is_file():
            raise FileNotFoundError(f"no model checkpoint at {path}")
        read_card(path)  # its format and config, in one line (not torch's advice) if not ours
        try:
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            kind = type(error).__name__
            raise ValueError(f"{path} is not a codec model checkpoint ({kind})") from error
        if checkpoint["version"] > CHECKPOINT_VERSION:
            raise ValueError(
                f"{path} needs a newer codec (checkpoint version {checkpoint['version']})"
            )
        model = cls(from_dict(ModelConfig, checkpoint["config"]), checkpoint["name"])
        model.set_weight_norm(False)
        model.load_state_dict(checkpoint_weights(checkpoint, model))
        if "entropy" in checkpoint:
            model.entropy = EntropyModel.from_state(checkpoint["entropy"])
        return model.eval()


def checkpoint_weights(checkpoint: dict, model: nn.Module) -> dict[str, Tensor]:
    """The state dict of a checkpoint `CodecModel.save` wrote: as stored, with int8 rows scaled
    back, and (a warm start) the fixed transforms taken from `model`, which its config built."""
    scales = checkpoint.get("int8_scales")
    if scales is None:
        return checkpoint["state_dict"]
    state = dict(checkpoint["state_dict"])
    for name, scale in scales.items():
        rows = state[name].reshape(state[name].shape[0], -1).float()
        state[name] = (rows * scale.float()[:, None]).view(state[name].shape)
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            state.setdefault(name, parameter.detach().clone())
    return state


def build_model(preset: str | Path = "speech16k", **overrides: Any) -> CodecModel:
    """An untrained model from a preset's `model:` section; overrides use dotted keys, e.g.
    `build_model("speech16k", **{"model.channels": 16})`."""
    wrong = [key for key in overrides if not key.startswith("model.")]
    if wrong:
        raise ValueError(f"build_model takes only model.* overrides, got {wrong[0]!r}")
    config = apply_overrides(load_preset(preset), overrides)
    if "model" not in config:
        raise ValueError(f"preset {preset} has no model: section")
    return CodecModel(from_dict(ModelConfig, config["model"]))
