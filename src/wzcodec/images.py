"""Image input and output: any Pillow-readable file or array -> HxWx3 uint8, and back.

Every mode is brought to 8-bit RGB: gray (L, I;16) is repeated over 3 channels, 16-bit is
scaled to 8 bits, alpha is dropped, palette and CMYK are converted. Anything else is an
``ImageError`` with one line of explanation.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

from wzcodec.errors import ImageError
from wzcodec.files import atomic_open

MAX_SIDE = 16384
MAX_PIXELS = 4096 * 4096  # 16.8 Mpx: larger inputs are refused (decoder memory grows with area)

ImageLike = "np.ndarray | Image.Image | str | Path"


def _to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img, dtype=np.int64)
        peak = 65535 if a.max(initial=0) > 255 else 255
        a = np.clip(np.round(a * (255.0 / peak)), 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if img.mode == "F":
        a = np.asarray(img, dtype=np.float32)
        a = np.clip(np.round(a * (255.0 if a.max(initial=0) <= 1.0 else 1.0)), 0, 255).astype(
            np.uint8
        )
        return np.repeat(a[..., None], 3, axis=2)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def check_size(h: int, w: int, what: str = "image") -> None:
    if h < 1 or w < 1:
        raise ImageError(f"{what} is empty ({w}x{h})")
    if h > MAX_SIDE or w > MAX_SIDE or h * w > MAX_PIXELS:
        raise ImageError(
            f"{what} is {w}x{h}, larger than the supported {MAX_PIXELS // 10**6} Mpx "
            f"(max side {MAX_SIDE}); split it into tiles"
        )


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as HxWx3 uint8, or raise ImageError naming the problem."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image")
    try:
        with Image.open(path) as img:
            check_size(img.height, img.width, str(path))
            img.load()
            return _to_rgb(img)
    except ImageError:
        raise
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
    ) as e:
        raise ImageError(f"{path}: not a readable image ({type(e).__name__})") from None


def as_rgb(image) -> np.ndarray:
    """Accept a path, PIL image or array (HxW, HxWx1/3/4; uint8, uint16 or float in [0, 1])."""
    if isinstance(image, (str, Path)):
        return read_rgb(image)
    if isinstance(image, Image.Image):
        check_size(image.height, image.width)
        return _to_rgb(image)
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ImageError(f"expected an HxW, HxWx3 or HxWx4 image array, got shape {a.shape}")
    check_size(a.shape[0], a.shape[1])
    if a.dtype == np.uint16:
        a = (a.astype(np.float64) / 257.0).round()
    elif a.dtype.kind == "f":
        a = np.clip(a, 0.0, 1.0) * 255.0 + 0.5
    a = np.clip(a, 0, 255).astype(np.uint8)[..., :3]
    return np.ascontiguousarray(np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a)


def is_gray(img: np.ndarray) -> bool:
    """True when the three channels of an HxWx3 image are equal (a gray source)."""
    return bool((img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all())


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float32 in [0, 1]."""
    return (
        torch.from_numpy(np.require(img, requirements=["C", "W"]))
        .permute(2, 0, 1)
        .float()
        .div_(255.0)
    )


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """3xHxW (or 1x3xHxW) float in [0, 1] -> HxWx3 uint8 (rounded, clamped)."""
    if t.dim() == 4:
        t = t[0]
    return t.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()


def image_bytes(img: np.ndarray, suffix: str = ".png", format: str | None = None) -> bytes:
    """An HxWx3 (or HxW) uint8 array as a file's bytes (format from the suffix, PNG by default)."""
    fmt = format or Image.registered_extensions().get(suffix.lower(), "PNG")
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    return buf.getvalue()


def save_image(path: str | Path, img: np.ndarray, format: str | None = None) -> None:
    """Write an HxWx3 uint8 array atomically (format from the suffix, PNG by default)."""
    path = Path(path)
    data = image_bytes(img, path.suffix, format)
    with atomic_open(path) as f:
        f.write(data)


def pad_to(x: torch.Tensor, factor: int = 64) -> torch.Tensor:
    """Replicate-pad the bottom and right of an NxCxHxW tensor to multiples of ``factor``."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % factor, (-w) % factor
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="replicate")


def crop_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The top-left h x w of an ...xHxW tensor (undoes ``pad_to``)."""
    return x[..., :h, :w]
