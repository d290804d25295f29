"""FSQ: finite scalar quantization (Mentzer et al. 2023, arXiv 2309.15505), the baseline of FSP."""

from __future__ import annotations

from torch import Tensor

from codec.quantizers.scalar import ScalarQuantizer


class FSQ(ScalarQuantizer):
    """Rounds `z = g(a)` in (0, 1) to the `L`-point grid `{0, 1/(L-1), ..., 1}`, ends included.

    This is Mentzer's `round(tanh(a) * (L - 1) / 2)` written on (0, 1), symmetric for every `L`.
    The end points get half-width bins, so uniform inputs give `log2(L-1) + 1/(L-1)` bits per
    dimension instead of `log2(L)`. Output in [-1, 1]; straight-through gradient.
    """

    def index(self, z: Tensor) -> Tensor:
        return (z * (self.levels - 1)).round().long()

    def value(self, level: Tensor) -> Tensor:
        return level / (self.levels - 1)

    def scale(self, value: Tensor) -> Tensor:
        return 2 * value - 1
