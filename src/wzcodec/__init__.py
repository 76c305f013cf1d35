"""wzcodec: image compression with side information at the decoder only (Wyner-Ziv).

    import wzcodec
    codec = wzcodec.load("heic-si", quality=30)  # a model and its shipped weights
    data = codec.encode(x)                        # bytes; the encoder never sees y
    x_hat = codec.decode(data, side=y)            # HxWx3 uint8; side=None always works
    x_hat = codec.decode(data, side=[y1, y2])     # several side images (cameras, past frames)

Which model: ``heic-si`` (the default) / ``avif-si`` send a plain HEIC / AVIF file and refine
its decode with y (quality: the base codec's 1..100; they also decode a camera's own .heic /
.avif); ``atn``, ``ndic``, ``dsin``, ``dsin-atn``, ``atn-paper`` and ``hyperprior`` are the
end-to-end learned models (quality 1..6); ``jpeg``, ``webp``, ``avif``, ``jxl``, ``heic`` are
the standard codecs alone. ``wzcodec.catalog.CATALOG`` describes them all (``wz models``);
``wzcodec.available()`` lists the models with shipped weights.

Images are HxWx3 uint8 arrays, PIL images or paths (any Pillow mode; gray is coded as gray).
Errors a user can cause raise ``WzError`` (``BitstreamError``, ``ImageError``); the ``wz``
command prints them as one line and exits 2. Decoding is deterministic across thread
settings. Sequences: ``wzcodec.sequence.decode_sequence``. Evaluation, training and the
report: the ``wz`` command (``wz --help``).

The names below are imported on first use (PEP 562), so ``import wzcodec`` and ``wz --help``
do not pay for PyTorch until a model is needed.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING

# compressai 1.2.8 calls torch.jit.script at import time, which torch 2.14 flags as deprecated.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)

__version__ = "0.1.0"

_WHERE = {
    "Codec": "wzcodec.codec",
    "PreparedSide": "wzcodec.codec",
    "available": "wzcodec.codec",
    "load": "wzcodec.codec",
    "read_header": "wzcodec.codec",
    "reuse_freed_memory": "wzcodec.memory",
    "BitstreamError": "wzcodec.errors",
    "ConversionWarning": "wzcodec.errors",
    "RateWarning": "wzcodec.errors",
    "ImageError": "wzcodec.errors",
    "WzError": "wzcodec.errors",
}

__all__ = [
    "BitstreamError",
    "Codec",
    "ConversionWarning",
    "ImageError",
    "PreparedSide",
    "RateWarning",
    "WzError",
    "__version__",
    "available",
    "load",
    "read_header",
    "reuse_freed_memory",
]

if TYPE_CHECKING:
    from wzcodec.codec import (
        Codec,
        PreparedSide,
        available,
        load,
        read_header,
    )
    from wzcodec.errors import (
        BitstreamError,
        ConversionWarning,
        ImageError,
        RateWarning,
        WzError,
    )
    from wzcodec.memory import reuse_freed_memory


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'wzcodec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])
