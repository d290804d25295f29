"""VP: vector perturbation (VP-VAE, Zhai et al. 2026, arXiv 2602.17133).

In training the latent is not quantized but moved by a Metropolis-Hastings step whose size
follows the local density of recent latents, mimicking the quantization error of a codebook
with equal-mass cells. The codebook is compiled by k-means only for inference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from codec.distributed import all_gather_rows, broadcast_, is_distributed, rank, world_size
from codec.quantizers.base import QuantizedResult
from codec.quantizers.codebook import CodebookQuantizer, from_rows, to_rows
from codec.quantizers.kmeans import kmeans, nearest
from codec.quantizers.knn import NeighbourDistances

_TINY = 1e-12
MAX_COMPILE_VECTORS = 200_000  # k-means sample size; more latents are subsampled


def sample_in_ball(radius: Tensor, dim: int) -> Tensor:
    """Uniform offsets in d-balls: `radius` `[N]` -> `[N, dim]` (Gaussian direction, length
    `radius * U^(1/d)`)."""
    direction = torch.randn(radius.shape[0], dim, device=radius.device)
    direction = direction / direction.norm(dim=1, keepdim=True).clamp_min(_TINY)
    length = radius * torch.rand_like(radius).pow(1.0 / dim)
    return direction * length[:, None]


def log_acceptance(at_z: Tensor, at_proposal: Tensor, dim: int) -> Tensor:
    """MH log-acceptance `min(0, d log[D_k(z) D_M(z) / (D_k(z') D_M(z'))])`.

    `at_z`, `at_proposal`: `[N, 2]` distances to the k-th and M-th neighbours. The target density
    is `D_k^-d` (kNN estimate) and the proposal density `R^-d` with `R = eta D_M`.
    """
    logs = at_z.clamp_min(_TINY).log().sum(1) - at_proposal.clamp_min(_TINY).log().sum(1)
    return (dim * logs).clamp(max=0.0)


class VectorPerturbation(CodebookQuantizer):
    """A stage that perturbs in training and quantizes with a compiled codebook at inference.

    State: a FIFO queue of `K * M` recent latents (`M = round(d * cluster_size_rate)`), started
    from N(0, I); each training vector enters with a probability set so that the queue turns
    over every `turnover_steps` steps. Training: radius `R(z) = eta * D_M(z)`, a uniform proposal
    in the ball, accepted by MH (`mh_accept`) and only if `|z' - z| <= R(z')`; the offset has no
    gradient. Codes in training are zeros. `compile` fits the codebook; encoding needs it.
    """

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        cluster_size_rate: float = 4.0,
        k4nn: int = 8,
        eta: float = 1.0,
        turnover_steps: int = 500,
        mh_accept: bool = True,
        rebuild_every: int = 10,
        norm_loss: bool = True,
    ) -> None:
        super().__init__(dim, codebook_size)
        self.cell_size = max(1, round(dim * cluster_size_rate))
        if k4nn > self.cell_size * codebook_size:
            raise ValueError(f"k4nn={k4nn} exceeds the queue of {self.cell_size * codebook_size}")
        self.turnover_steps = turnover_steps
        self.mh_accept = mh_accept
        self.norm_loss = norm_loss
        self.neighbours = NeighbourDistances((k4nn, self.cell_size), rebuild_every)
        self.register_buffer("queue", torch.randn(codebook_size * self.cell_size, dim))
        self.register_buffer("queue_pos", torch.tensor(0))
        self.register_buffer("eta", torch.tensor(float(eta)))
        self.register_buffer("compiled", torch.tensor(False))
        self.register_load_state_dict_post_hook(lambda module, _: module.neighbours.invalidate())

    def check_ready(self) -> None:
        if not self.compiled:
            raise RuntimeError(
                "this model has a VP stage without a compiled codebook: compile it with "
                "model.compile_codebooks(wavs) or `codec compile MODEL --data DATA_DIR -o OUT`"
            )

    def forward(self, z: Tensor) -> QuantizedResult:
        losses = self.losses(z.float()) if self.norm_loss else {}
        if not self.training:
            return self.quantize(z, losses)
        x = to_rows(z)
        self.neighbours.update(self.queue)
        offset, accepted, radius = self.perturbation(x.detach())
        self.enqueue(x.detach())
        codes = torch.zeros(z.shape[0], z.shape[2], dtype=torch.long, device=z.device)
        stats = (
            {"acceptance": accepted.float().mean().item(), "radius": radius.mean().item()}
            if self.report_stats
            else {}
        )
        return QuantizedResult(from_rows(x + offset, z.shape[0]), codes, losses, stats)

    def perturbation(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """For rows `x` `[N, d]`: the offsets to add `[N, d]` (zero where rejected), the accepted
        mask `[N]` and the radii `[N]`."""
        at_x = self.neighbours(x)
        radius = self.eta * at_x[:, 1]
        step = sample_in_ball(radius, self.dim)
        if not self.mh_accept:
            return step, torch.ones_like(radius, dtype=torch.bool), radius
        at_proposal = self.neighbours(x + step)
        reversible = step.norm(dim=1) <= self.eta * at_proposal[:, 1]
        accept = (
            torch.rand_like(radius).log() < log_acceptance(at_x, at_proposal, self.dim)
        ) & reversible
        return torch.where(accept[:, None], step, torch.zeros_like(step)), accept, radius

    def losses(self, z: Tensor) -> dict[str, Tensor]:
        """Pull each latent dimension to mean 0, variance 1 (batch statistics)."""
        mean, var = z.mean(dim=(0, 2)), z.var(dim=(0, 2), unbiased=False)
        return {"norm": (0.1 * mean.pow(2) + 0.07 * (var - 1).pow(2)).mean()}

    @torch.no_grad()
    def enqueue(self, x: Tensor) -> None:
        """Write a random share of rows `x` (from every rank) into the ring buffer."""
        size = self.queue.shape[0]
        probability = min(1.0, size / (self.turnover_steps * x.shape[0] * world_size()))
        rows = all_gather_rows(x[torch.rand(x.shape[0], device=x.device) < probability])[-size:]
        slots = (self.queue_pos + torch.arange(rows.shape[0], device=x.device)) % size
        self.queue[slots] = rows.to(self.queue.dtype)
        self.queue_pos.copy_((self.queue_pos + rows.shape[0]) % size)

    @torch.no_grad()
    def compile(self, latents: Tensor, seed: int = 0) -> None:
        """Fit the codebook by k-means on rows `latents` `[N, d]` together with the queue (so
        K distinct entries exist even for little audio). Under DDP rank 0 fits and broadcasts."""
        if rank() == 0:
            generator = torch.Generator(device=latents.device).manual_seed(seed)
            if latents.shape[0] > MAX_COMPILE_VECTORS:
                keep = torch.randperm(latents.shape[0], generator=generator, device=latents.device)
                latents = latents[keep[:MAX_COMPILE_VECTORS]]
            data = torch.cat([latents.float().to(self.queue.device), self.queue])
            self.codebook.copy_(kmeans(data, self.codebook_size, seed=seed))
        if is_distributed():
            broadcast_(self.codebook)
        self.compiled.fill_(True)


@dataclass
class EtaEstimate:
    """The outcome of `estimate_eta`: the calibrated eta and what was measured with it."""

    eta: float
    acceptance: float
    quantization_error: float  # mean |z - q(z)| with a compiled codebook
    perturbation: float  # mean |offset| of accepted moves


def estimate_eta(
    dim: int,
    codebook_size: int,
    cluster_size_rate: float = 4.0,
    k4nn: int = 8,
    iterations: int = 3,
    n_test: int = 8192,
    seed: int = 0,
) -> EtaEstimate:
    """Calibrate eta on N(0, I) latents: compile a codebook on a queue's worth of samples, then
    repeatedly scale eta by (mean quantization error) / (mean accepted perturbation)."""
    torch.manual_seed(seed)
    stage = VectorPerturbation(dim, codebook_size, cluster_size_rate, k4nn, eta=1.0)
    stage.compile(torch.randn(stage.queue.shape[0], dim), seed=seed)
    stage.neighbours.update(stage.queue)
    x = torch.randn(n_test, dim)
    _, error = nearest(x, stage.codebook)
    quantization_error = error.sqrt().mean().item()

    def measure() -> tuple[float, float]:
        offset, accepted, _ = stage.perturbation(x)
        return accepted.float().mean().item(), offset[accepted].norm(dim=1).mean().item()

    for _ in range(iterations):
        stage.eta.mul_(quantization_error / measure()[1])
    acceptance, moved = measure()
    return EtaEstimate(stage.eta.item(), acceptance, quantization_error, moved)
