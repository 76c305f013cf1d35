"""wzcodec: image compression with side information at the decoder only (Wyner-Ziv).

import wzcodec
codec = wzcodec.load("hyperprior", quality=3)
data = codec.encode(x)                 # bytes; the encoder never sees y
x_hat = codec.decode(data, side=y)     # HxWx3 uint8
"""

import warnings

# compressai 1.2.8 calls torch.jit.script at import time, which torch 2.14 flags as deprecated.
warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)

from wzcodec.codec import (  # noqa: E402
    Codec,
    PreparedSide,
    available,
    load,
    read_header,
    reuse_freed_memory,
)
from wzcodec.errors import BitstreamError, ImageError, WzError  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "BitstreamError",
    "Codec",
    "ImageError",
    "PreparedSide",
    "WzError",
    "__version__",
    "available",
    "load",
    "read_header",
    "reuse_freed_memory",
]
