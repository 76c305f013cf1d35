"""Image input and output: any Pillow-readable file or array -> HxWx3 uint8, and back.

Every mode is brought to 8-bit RGB: gray (L, I;16) is repeated over 3 channels, 16-bit is
scaled to 8 bits, alpha is dropped, palette and CMYK are converted. Anything else is an
``ImageError`` with one line of explanation.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from wzcodec.errors import ConversionWarning, ImageError
from wzcodec.files import atomic_open

if TYPE_CHECKING:  # the tensor helpers import torch when called: reading and writing images,
    import torch  # and so a standard codec's encoder, need no PyTorch

MAX_SIDE = 16384
MAX_PIXELS = 4096 * 4096  # 16.8 Mpx: larger inputs are refused (decoder memory grows with area)

ImageLike = "np.ndarray | Image.Image | str | Path"


def _note(what: str, message: str) -> None:
    """Say a lossy conversion of an input (once per input; the CLI prints it as one line)."""
    warnings.warn(f"{what}: {message}", ConversionWarning, stacklevel=3)


def _to_rgb(img: Image.Image, what: str = "image") -> np.ndarray:
    """Any Pillow image as HxWx3 uint8, each lossy step said (``ConversionWarning``)."""
    if getattr(img, "n_frames", 1) > 1:
        _note(what, f"has {img.n_frames} frames; only the first is coded")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img, dtype=np.int64)
        peak = 65535 if a.max(initial=0) > 255 else 255
        if peak > 255:
            _note(what, "16-bit samples reduced to 8 bits")
        a = np.clip(np.round(a * (255.0 / peak)), 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if img.mode == "F":
        a = np.asarray(img, dtype=np.float32)
        _note(what, "floating-point samples rounded to 8 bits")
        a = np.clip(np.round(a * (255.0 if a.max(initial=0) <= 1.0 else 1.0)), 0, 255).astype(
            np.uint8
        )
        return np.repeat(a[..., None], 3, axis=2)
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        _note(what, "alpha channel dropped (transparent pixels keep their colour)")
    if img.mode in ("CMYK", "LAB", "HSV"):
        _note(what, f"{img.mode} converted to RGB")
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8).copy()


def check_size(h: int, w: int, what: str = "image") -> None:
    if h < 1 or w < 1:
        raise ImageError(f"{what} is empty ({w}x{h})")
    if h > MAX_SIDE or w > MAX_SIDE:
        raise ImageError(
            f"{what} is {w}x{h}: a side longer than the supported {MAX_SIDE} pixels; "
            "split it into tiles"
        )
    if h * w > MAX_PIXELS:
        raise ImageError(
            f"{what} is {w}x{h}, {h * w / 1e6:.1f} Mpx: more than the supported "
            f"{MAX_PIXELS / 1e6:.1f} Mpx; split it into tiles"
        )


def read_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as HxWx3 uint8, or raise ImageError naming the problem."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image")
    return _open(path, str(path))


def _open(source, what: str) -> np.ndarray:
    try:
        with Image.open(source) as img:
            check_size(img.height, img.width, what)
            img.load()
            return _to_rgb(img, what)
    except ImageError:
        raise
    except Image.DecompressionBombError:
        raise ImageError(f"{what}: not a readable image: too large to open safely") from None
    except UnidentifiedImageError:
        raise ImageError(f"{what}: not a readable image: no image format recognised") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        reason = "truncated" if "truncated" in str(e) else "corrupt or truncated"
        raise ImageError(f"{what}: not a readable image: {reason}") from None


def read_rgb_bytes(data: bytes, what: str = "stdin") -> np.ndarray:
    """An image file's bytes (standard input) as HxWx3 uint8, as ``read_rgb``."""
    return _open(io.BytesIO(data), what)


def as_rgb(image) -> np.ndarray:
    """Accept a path, PIL image or array (HxW, HxWx1/3/4; uint8, uint16, or float in [0, 1]).
    Floats outside [0, 1] (an image in 0..255 as float) are refused, not clipped."""
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
    if a.shape[2] == 4:
        _note("image", "alpha channel dropped")
    if a.dtype == np.uint16:
        _note("image", "16-bit samples reduced to 8 bits")
        a = (a.astype(np.float64) / 257.0).round()
    elif a.dtype.kind == "f":
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        if not (lo >= 0.0 and hi <= 1.0):
            raise ImageError(
                f"a float image must hold values in 0..1, got {lo:g}..{hi:g} "
                "(divide by 255, or pass uint8)"
            )
        a = np.nan_to_num(a) * 255.0 + 0.5
    elif a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8 and (
        a.dtype.kind not in "iu" or a.min(initial=0) < 0 or a.max(initial=0) > 255
    ):
        raise ImageError(f"an image array of {a.dtype} must hold values in 0..255")
    a = np.clip(a, 0, 255).astype(np.uint8)[..., :3]
    return np.ascontiguousarray(np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a)


def is_gray(img: np.ndarray) -> bool:
    """True when the three channels of an HxWx3 image are equal (a gray source)."""
    return bool((img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all())


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> 3xHxW float32 in [0, 1]."""
    import torch

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
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    ph, pw = (-h) % factor, (-w) % factor
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="replicate")


def crop_to(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The top-left h x w of an ...xHxW tensor (undoes ``pad_to``)."""
    return x[..., :h, :w]
