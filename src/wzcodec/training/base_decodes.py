"""Base decodes for the receivers' trainers (``refiner.py``, ``flow.py``), coded once and
cached: every training image through every base codec at every quality, its decode as a PNG
and its file size beside it (the file's bpp, which the receiver is told). Also the small image
helpers both trainers share.

    cache/<base>/q<q>/<stem>-<hash of the source path>.png   (+ .bytes: the file size)
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from wzcodec import classical
from wzcodec.files import atomic_write_bytes
from wzcodec.images import image_bytes, is_gray, read_rgb


def gray_or_rgb(img: np.ndarray) -> np.ndarray:
    """Gray images are kept as HxW (a third of the memory)."""
    return np.ascontiguousarray(img[..., 0]) if is_gray(img) else img


def cache_path(cache: Path, base: str, q: int, src: Path) -> Path:
    """Where the cache keeps ``src``'s decode from ``base`` at quality ``q``."""
    key = hashlib.sha256(str(src.resolve()).encode()).hexdigest()[:16]
    return cache / base / f"q{q}" / f"{src.stem}-{key}.png"


def size_path(decode: Path) -> Path:
    """Where the cache keeps a base decode's file size in bytes (a text file beside it)."""
    return decode.with_suffix(".bytes")


def _code_one(job: tuple[str, str, int, str]) -> None:
    src, base, q, dst = job
    x = read_rgb(src)
    data = classical.encode(base, x, q)
    atomic_write_bytes(Path(dst), image_bytes(gray_or_rgb(classical.decode(data))))
    atomic_write_bytes(size_path(Path(dst)), str(len(data)).encode())


def precompute(images: list[Path], qualities: dict[str, list[int]], cache: Path, workers: int):
    """Base decodes of every image at every base and quality not yet in ``cache``."""
    jobs = [
        (str(src), base, q, str(cache_path(cache, base, q, src)))
        for base, qs in qualities.items()
        for q in qs
        for src in images
        if not size_path(cache_path(cache, base, q, src)).exists()
    ]
    for _, _, _, dst in jobs:
        Path(dst).parent.mkdir(parents=True, exist_ok=True)
    if not jobs:
        return
    with ProcessPoolExecutor(max(1, workers)) as ex:
        list(tqdm(ex.map(_code_one, jobs, chunksize=4), total=len(jobs), desc="base decodes"))


def load_image(path: Path) -> np.ndarray:
    """An image file as HxW (gray) or HxWx3 uint8."""
    with Image.open(path) as im:
        return np.array(im.convert("L") if im.mode in ("L", "I;16") else im.convert("RGB"))


def to_chw(a: np.ndarray) -> torch.Tensor:
    """HxW or HxWx3 uint8 -> a (3, H, W) float tensor in [0, 1] (gray: one plane, expanded)."""
    t = torch.from_numpy(np.require(a, requirements=["C", "W"])).float().div_(255)
    return t[None].expand(3, -1, -1) if t.dim() == 2 else t.permute(2, 0, 1)


def pad_to_crop(t: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(C, h', w') replicate-padded to at least (C, h, w): small images still stack."""
    ph, pw = h - t.shape[1], w - t.shape[2]
    if ph <= 0 and pw <= 0:
        return t
    return torch.nn.functional.pad(t[None], (0, max(0, pw), 0, max(0, ph)), mode="replicate")[0]
