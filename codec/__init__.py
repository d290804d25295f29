"""codec: a streaming neural speech codec with codebook-free quantization (FSP, VP)."""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"

# Exported lazily, so `import codec` (and `codec --help`) does not pay for importing torch.
_EXPORTS = {
    "CodecModel": "codec.model",
    "build_model": "codec.model",
    "load_model": "codec.zoo",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'codec' has no attribute {name!r}")
