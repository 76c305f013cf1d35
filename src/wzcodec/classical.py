"""Classical codecs through Pillow and its plugins, on HxWx3 uint8 images.

JPEG, WebP and AVIF come with Pillow; HEIC (HEVC intra, the core of BPG) with pillow-heif;
JPEG XL with pillow-jxl-plugin. Each codec takes a quality setting in its own scale.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from wzcodec.images import is_gray

_plugins_loaded = False


def _load_plugins() -> None:
    global _plugins_loaded
    if not _plugins_loaded:
        import pillow_heif
        import pillow_jxl  # noqa: F401  (registers JXL)

        pillow_heif.register_heif_opener()
        _plugins_loaded = True


# name -> (Pillow format, extra save options, quality sweep covering ~0.02..1 bpp)
CODECS: dict[str, tuple[str, dict, list[int]]] = {
    "jpeg": (
        "JPEG",
        {"subsampling": "4:2:0", "optimize": True},
        [2, 5, 10, 15, 25, 40, 60, 80, 90],
    ),
    "webp": ("WEBP", {"method": 6}, [0, 5, 10, 20, 35, 50, 70, 85, 95]),
    "avif": ("AVIF", {"speed": 6, "subsampling": "4:2:0"}, [2, 10, 20, 30, 40, 50, 60, 70, 80]),
    "jxl": ("JXL", {"effort": 7}, [2, 10, 20, 30, 45, 60, 75, 85, 92]),
    "heic": ("HEIF", {"chroma": 420}, [1, 10, 20, 30, 40, 50, 60, 70, 85]),
    # the anchors at their strongest: libaom's slowest practical speed (about 10x the time of
    # speed 6) and x265's slowest preset; their files are plain AVIF / HEIC files
    "avif-s2": ("AVIF", {"speed": 2, "subsampling": "4:2:0"}, [2, 10, 20, 30, 40, 50, 60, 70, 80]),
    "heic-slow": (
        "HEIF",
        {"chroma": 420, "enc_params": {"preset": "placebo"}},
        [1, 10, 20, 30, 40, 50, 60, 70, 85],
    ),
}

MAX_QUALITY = {name: 100 for name in CODECS}


def family(codec: str) -> str:
    """The file format a codec setting writes (``avif-s2`` -> ``avif``)."""
    return codec.split("-")[0]


_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}


def sniff(data: bytes) -> str | None:
    """Which codec's file ``data`` is (from its first bytes), or None."""
    head = bytes(data[:64])
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:2] == b"\xff\x0a" or head[4:12] == b"JXL \r\n\x87\n":
        return "jxl"
    if head[4:8] == b"ftyp":
        size = int.from_bytes(head[:4], "big")
        brands = {head[i : i + 4] for i in range(8, min(size, len(head)), 4)} - {b"\0\0\0\0"}
        if brands & {b"avif", b"avis"}:
            return "avif"
        if brands & _HEIF_BRANDS:
            return "heic"
    return None


def encode(codec: str, img: np.ndarray, quality: int) -> bytes:
    _load_plugins()
    fmt, opts, _ = CODECS[codec]
    pil = Image.fromarray(img)
    if is_gray(img):
        pil = pil.convert("L")  # code gray sources as gray, as a user would
    buf = io.BytesIO()
    pil.save(buf, format=fmt, quality=quality, **opts)
    return buf.getvalue()


def decode(data: bytes) -> np.ndarray:
    _load_plugins()
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))
