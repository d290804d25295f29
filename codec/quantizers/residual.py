"""Residual quantization: an ordered stack of stages, each coding what the previous ones left."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from codec.config import QuantizerConfig
from codec.quantizers.base import QuantizedResult, Quantizer
from codec.quantizers.codebook import to_rows
from codec.quantizers.fsp import FSP
from codec.quantizers.fsq import FSQ
from codec.quantizers.vp import VectorPerturbation
from codec.quantizers.vq import VectorQuantizer


class QuantizerStage(nn.Module):
    """A quantizer between a learned down-projection `D -> d` and up-projection `d -> D`."""

    def __init__(self, latent_dim: int, quantizer: Quantizer) -> None:
        super().__init__()
        self.down = nn.Conv1d(latent_dim, quantizer.dim, 1)
        self.quantizer = quantizer
        self.up = nn.Conv1d(quantizer.dim, latent_dim, 1)

    def forward(self, x: Tensor) -> QuantizedResult:
        """`x`: `[B, D, T]` -> result with `z` in `[B, D, T]`, codes `[B, T]`."""
        result = self.quantizer(self.down(x))
        result.z = self.up(result.z)
        return result

    def encode(self, x: Tensor) -> Tensor:
        return self.quantizer.encode(self.down(x))

    def decode(self, codes: Tensor) -> Tensor:
        return self.up(self.quantizer.decode(codes))


class ResidualQuantizer(nn.Module):
    """Stage `i` quantizes `x - sum_{j<i} q_j` (measured after up-projection); the output is the
    sum of the stages' outputs. With `dropout > 0`, each training example uses, with that
    probability, only a random number of leading stages, so one model serves several bitrates.

    Nothing in the audio loss asks a stage's output to approximate its input: the residuals can
    grow down the stack. `refine_loss` adds the loss `refine`, the mean over stages of the
    energy of the residual left after the stage relative to the latent's, so that every stage
    refines. The stats report that ratio per stage (`residual_energy`) either way."""

    def __init__(
        self, stages: list[QuantizerStage], dropout: float = 0.0, refine_loss: bool = False
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.dropout = dropout
        self.refine_loss = refine_loss

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def vp_stages(self) -> list[VectorPerturbation]:
        """The stages whose codebooks are compiled after training."""
        return [s.quantizer for s in self.stages if isinstance(s.quantizer, VectorPerturbation)]

    @property
    def codebook_sizes(self) -> list[int]:
        return [stage.quantizer.codebook_size for stage in self.stages]

    @property
    def digit_radices(self) -> list[list[int]]:
        return [stage.quantizer.digit_radices for stage in self.stages]

    def _check_stages(self, n_stages: int | None) -> int:
        n = self.num_stages if n_stages is None else n_stages
        if not 1 <= n <= self.num_stages:
            raise ValueError(f"n_stages must be between 1 and {self.num_stages}, got {n}")
        return n

    def _active_stages(self, batch_size: int, device: torch.device) -> Tensor:
        """`[B]`: how many leading stages each example uses."""
        n = torch.full((batch_size,), self.num_stages, device=device)
        if not self.training or self.dropout == 0:
            return n
        drop = torch.rand(batch_size, device=device) < self.dropout
        random_n = torch.randint(1, self.num_stages + 1, (batch_size,), device=device)
        return torch.where(drop, random_n, n)

    def report_stats(self, enabled: bool) -> None:
        """Whether `forward` returns the stages' usage statistics (off between logged steps:
        computing them waits on the device)."""
        for stage in self.stages:
            stage.quantizer.report_stats = enabled

    def forward(self, x: Tensor) -> QuantizedResult:
        """`x`: `[B, D, T]` -> `z` `[B, D, T]`, codes `[B, n_q, T]`, summed losses, stage stats."""
        active = self._active_stages(x.shape[0], x.device)
        residual, total = x, torch.zeros_like(x)
        codes, losses, stats, energies = [], {}, {}, []
        energy = x.float().pow(2).mean()
        for i, stage in enumerate(self.stages):
            result = stage(residual)
            residual = residual - result.z
            total = total + result.z * (i < active).to(x.dtype)[:, None, None]
            codes.append(result.codes)
            for name, loss in result.losses.items():
                losses[name] = losses.get(name, 0.0) + loss
            stats.update({f"stage{i}/{name}": value for name, value in result.stats.items()})
            if self.refine_loss or stage.quantizer.report_stats:  # not on the hot path otherwise
                energies.append(residual.float().pow(2).mean() / energy.clamp_min(1e-12))
            if stage.quantizer.report_stats:
                stats[f"stage{i}/residual_energy"] = float(energies[-1].detach())
        if self.refine_loss:
            losses["refine"] = torch.stack(energies).mean()
        return QuantizedResult(total, torch.stack(codes, dim=1), losses, stats)

    def encode(self, x: Tensor, n_stages: int | None = None) -> Tensor:
        """`x`: `[B, D, T]` -> codes `[B, n_stages, T]` (all stages by default)."""
        residual, codes = x, []
        for stage in self.stages[: self._check_stages(n_stages)]:
            stage_codes = stage.encode(residual)
            residual = residual - stage.decode(stage_codes)
            codes.append(stage_codes)
        return torch.stack(codes, dim=1)

    @torch.no_grad()
    def compile_codebooks(self, x: Tensor) -> None:
        """Fit the codebook of every stage that compiles one (VP), stage by stage on the true
        residuals of latents `x` `[1, D, N]`: stage 1 on `x`, stage 2 on `x - q_1(x)`, ..."""
        residual = x
        for stage in self.stages:
            if isinstance(stage.quantizer, VectorPerturbation):
                stage.quantizer.compile(to_rows(stage.down(residual)))
            residual = residual - stage.decode(stage.encode(residual))

    def decode(self, codes: Tensor) -> Tensor:
        """codes `[B, n, T]` (the first `n` stages) -> latent `[B, D, T]`."""
        self._check_stages(codes.shape[1])
        return sum(
            stage.decode(codes[:, i]) for i, stage in enumerate(self.stages[: codes.shape[1]])
        )


def make_quantizer(cfg: QuantizerConfig) -> Quantizer:
    """One stage's quantizer of the family `cfg.kind`."""
    if cfg.kind == "fsp":
        return FSP(cfg.levels, cfg.activation, cfg.quantize_rate, cfg.norm_loss)
    if cfg.kind == "fsq":
        return FSQ(cfg.levels, cfg.activation)
    if cfg.kind == "vq":
        vq = cfg.vq
        return VectorQuantizer(
            cfg.dim, cfg.codebook_size, vq.decay, vq.commitment, vq.dead_fraction
        )
    if cfg.kind == "vp":
        vp = cfg.vp
        return VectorPerturbation(
            cfg.dim,
            cfg.codebook_size,
            vp.cluster_size_rate,
            vp.k4nn,
            vp.eta,
            vp.turnover_steps,
            vp.mh_accept,
            vp.rebuild_every,
            cfg.norm_loss,
        )
    raise ValueError(f"unknown quantizer kind {cfg.kind!r}: choose fsp, fsq, vq or vp")


def build_quantizer(cfg: QuantizerConfig, latent_dim: int) -> ResidualQuantizer:
    """The residual stack a `QuantizerConfig` describes."""
    stages = [QuantizerStage(latent_dim, make_quantizer(cfg)) for _ in range(cfg.n_stages)]
    return ResidualQuantizer(stages, cfg.dropout, cfg.refine_loss)
