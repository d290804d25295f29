"""Quantizer stages: one contract (`Quantizer`), FSQ, FSP, VQ and VP, the residual stack."""

from codec.quantizers.base import QuantizedResult, Quantizer
from codec.quantizers.fsp import FSP
from codec.quantizers.fsq import FSQ
from codec.quantizers.residual import QuantizerStage, ResidualQuantizer, build_quantizer
from codec.quantizers.vp import VectorPerturbation, estimate_eta
from codec.quantizers.vq import VectorQuantizer

__all__ = [
    "FSP",
    "FSQ",
    "QuantizedResult",
    "Quantizer",
    "QuantizerStage",
    "ResidualQuantizer",
    "VectorPerturbation",
    "VectorQuantizer",
    "build_quantizer",
    "estimate_eta",
]
