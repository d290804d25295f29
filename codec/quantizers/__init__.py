"""Quantizer stages: one contract (`Quantizer`), the FSQ and FSP families, the residual stack."""

from codec.quantizers.base import QuantizedResult, Quantizer
from codec.quantizers.fsp import FSP
from codec.quantizers.fsq import FSQ
from codec.quantizers.residual import QuantizerStage, ResidualQuantizer, build_quantizer

__all__ = [
    "FSP",
    "FSQ",
    "QuantizedResult",
    "Quantizer",
    "QuantizerStage",
    "ResidualQuantizer",
    "build_quantizer",
]
