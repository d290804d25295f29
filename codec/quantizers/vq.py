"""VQ: classic vector quantization with an EMA codebook (van den Oord et al. 2017; Razavi et al.
2019), k-means initialisation and dead-code restart: the baseline that VP replaces."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from codec.distributed import all_reduce_sum_, broadcast_
from codec.quantizers.base import QuantizedResult
from codec.quantizers.codebook import CodebookQuantizer, from_rows, to_rows
from codec.quantizers.kmeans import kmeans, nearest

_EPS = 1e-5


class VectorQuantizer(CodebookQuantizer):
    """Nearest-codebook quantization; in training the codebook follows an exponential moving
    average (`decay`) of the vectors assigned to each code, and the encoder is pulled towards
    its codes by a commitment loss. Codes whose average use falls below `dead_fraction` of the
    mean are restarted on random vectors of the batch. Statistics are summed over DDP ranks."""

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        decay: float = 0.99,
        commitment: float = 0.25,
        dead_fraction: float = 0.01,
    ) -> None:
        super().__init__(dim, codebook_size)
        self.decay = decay
        self.commitment = commitment
        self.dead_fraction = dead_fraction
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("cluster_size", torch.zeros(codebook_size))
        self.register_buffer("embed_sum", torch.zeros(codebook_size, dim))

    def forward(self, z: Tensor) -> QuantizedResult:
        x = to_rows(z)
        if self.training and not self.initialized:
            self._initialise(x)
        index, _ = nearest(x, self.codebook)
        quantized = self.codebook[index]
        losses = {"commitment": self.commitment * F.mse_loss(x, quantized)}
        stats = self.usage_stats(index)
        if self.training:
            stats["dead_codes"] = float(self._update(x.detach(), index))
        z_q = x + (quantized - x).detach()
        return QuantizedResult(
            from_rows(z_q, z.shape[0]), index.view(z.shape[0], -1), losses, stats
        )

    @torch.no_grad()
    def _initialise(self, x: Tensor) -> None:
        """k-means on the first batch (rank 0's, broadcast); too few vectors are repeated."""
        if x.shape[0] < self.codebook_size:
            repeat = torch.randint(x.shape[0], (self.codebook_size,), device=x.device)
            x = x[repeat] + 1e-3 * x.std() * torch.randn(
                self.codebook_size, self.dim, device=x.device
            )
        self.codebook.copy_(broadcast_(kmeans(x, self.codebook_size, max_iters=20)))
        self.cluster_size.fill_(1.0)
        self.embed_sum.copy_(self.codebook)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update(self, x: Tensor, index: Tensor) -> int:
        """EMA step on the batch's assignments, then dead-code restart; returns the dead count."""
        counts = all_reduce_sum_(torch.bincount(index, minlength=self.codebook_size).float())
        sums = all_reduce_sum_(torch.zeros_like(self.embed_sum).index_add_(0, index, x))
        self.cluster_size.lerp_(counts, 1 - self.decay)
        self.embed_sum.lerp_(sums, 1 - self.decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + _EPS) / (total + self.codebook_size * _EPS) * total
        self.codebook.copy_(self.embed_sum / smoothed[:, None])
        mean_use = counts.sum() / self.codebook_size
        dead = torch.nonzero(self.cluster_size < self.dead_fraction * mean_use).flatten()
        if dead.numel():
            picks = broadcast_(x[torch.randint(x.shape[0], (dead.numel(),), device=x.device)])
            self.codebook[dead] = picks
            self.cluster_size[dead] = mean_use
            self.embed_sum[dead] = picks * mean_use
        return dead.numel()
