"""Evaluation protocols and the training transform.

``paper``   the papers' setting: KITTI center-crop 370x740, Cityscapes full frame, other sources
            center-crop to 1:2 (H:W); then bilinear resize to 128x256.
``native``  no resizing; the codec replicate-pads to a multiple of its factor (64) and metrics
            are computed on the unpadded area (``wzcodec.images.pad_to`` / ``crop_to``).

``TrainTransform`` draws one random crop at the same position in x and y, a joint horizontal
flip, an optional x/y swap, and turns single photos into pseudo-pairs (y = a shifted crop of
the same photo with photometric jitter).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from wzcodec.data.pairs import Pair
from wzcodec.images import to_tensor

PAPER_SIZE = (128, 256)  # H, W
PSEUDO_SHIFT = 48  # a pseudo-pair's largest horizontal shift of y (pixels)
PSEUDO_GAIN, PSEUDO_OFFSET = (0.85, 1.15), 12.0  # its re-lighting: y·gain + offset (0..255)
KITTI_CROP = (370, 740)


def _center_crop(img: np.ndarray, h: int, w: int) -> np.ndarray:
    H, W = img.shape[:2]
    h, w = min(h, H), min(w, W)
    top, left = (H - h) // 2, (W - w) // 2
    return img[top : top + h, left : left + w]


def paper_view(img: np.ndarray, source: str, size: tuple[int, int] = PAPER_SIZE) -> np.ndarray:
    """One image under the paper protocol (see module docstring)."""
    if "kitti" in source:
        img = _center_crop(img, *KITTI_CROP)
    elif "cityscapes" not in source:
        H, W = img.shape[:2]
        img = _center_crop(img, H, 2 * H) if W >= 2 * H else _center_crop(img, W // 2, W)
    return np.asarray(Image.fromarray(img).resize((size[1], size[0]), Image.BILINEAR))


def paper_protocol(x: np.ndarray, y: np.ndarray | None, pair: Pair, rng=None):
    return to_tensor(paper_view(x, pair.source)), to_tensor(
        paper_view(y if y is not None else x, pair.source)
    )


def native_protocol(x: np.ndarray, y: np.ndarray | None, pair: Pair, rng=None):
    return to_tensor(x), to_tensor(y if y is not None else x)


PROTOCOLS = {"paper": paper_protocol, "native": native_protocol}


@dataclass(frozen=True)
class PseudoPair:
    """Where a single photo's x and y are cut (top, left, height, width) and how y is re-lit:
    a stereo pair with one disparity."""

    x_box: tuple[int, int, int, int]
    y_box: tuple[int, int, int, int]
    gain: float
    offset: float  # on the 0..255 scale


def pseudo_pair(
    H: int, W: int, crop: tuple[int, int], rng: random.Random, max_shift: int = PSEUDO_SHIFT
) -> PseudoPair:
    """The one pseudo-pair draw of every trainer: x is a crop of an H x W photo, y the crop
    ``dx`` (0..max_shift) columns to its left, re-lit (gain 0.85..1.15, offset ±12/255)."""
    ch, cw = min(crop[0], H), min(crop[1], W - 1)
    dx = rng.randint(0, min(max_shift, W - cw))
    top = rng.randint(0, H - ch)
    left = rng.randint(0, W - cw - dx)
    gain, offset = rng.uniform(*PSEUDO_GAIN), rng.uniform(-PSEUDO_OFFSET, PSEUDO_OFFSET)
    return PseudoPair((top, left + dx, ch, cw), (top, left, ch, cw), gain, offset)


def cut(img, box: tuple[int, int, int, int]):
    """``img[top : top + h, left : left + w]``."""
    top, left, h, w = box
    return img[top : top + h, left : left + w]


class TrainTransform:
    """Joint random crop + flip (+ swap) for pairs; pseudo-pairs for single photos."""

    def __init__(
        self,
        crop: int | tuple[int, int] = 256,
        hflip: bool = True,
        swap: bool = True,
        max_shift: int = PSEUDO_SHIFT,
        protocol: str | None = None,
    ):
        self.crop = (crop, crop) if isinstance(crop, int) else tuple(crop)
        self.hflip, self.swap, self.max_shift = hflip, swap, max_shift
        self.protocol = protocol

    def _crop_box(
        self, H: int, W: int, rng: random.Random, margin: int = 0
    ) -> tuple[int, int, int, int]:
        ch, cw = min(self.crop[0], H), min(self.crop[1], W)
        top = rng.randint(0, H - ch)
        left = rng.randint(0, W - cw)
        return top, left, ch, cw

    def __call__(self, x: np.ndarray, y: np.ndarray | None, pair: Pair, rng: random.Random):
        if self.protocol == "paper":
            x = paper_view(x, pair.source)
            y = paper_view(y, pair.source) if y is not None else None
        if y is None:
            x, y = self._pseudo_pair(x, rng)
        else:
            H, W = min(x.shape[0], y.shape[0]), min(x.shape[1], y.shape[1])
            top, left, ch, cw = self._crop_box(H, W, rng)
            x = x[top : top + ch, left : left + cw]
            y = y[top : top + ch, left : left + cw]
        xt, yt = to_tensor(x), to_tensor(y)
        xt, yt = _pad_min(xt, self.crop), _pad_min(yt, self.crop)
        if self.hflip and rng.random() < 0.5:
            xt, yt = xt.flip(-1), yt.flip(-1)
        if self.swap and rng.random() < 0.5:
            xt, yt = yt, xt
        return xt, yt

    def _pseudo_pair(self, img: np.ndarray, rng: random.Random) -> tuple[np.ndarray, np.ndarray]:
        p = pseudo_pair(img.shape[0], img.shape[1], self.crop, rng, self.max_shift)
        y = cut(img, p.y_box).astype(np.float32)
        return cut(img, p.x_box), np.clip(y * p.gain + p.offset, 0, 255).astype(np.uint8)


def _pad_min(t: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Images smaller than the crop are replicate-padded so a batch stacks."""
    ph, pw = size[0] - t.shape[-2], size[1] - t.shape[-1]
    if ph <= 0 and pw <= 0:
        return t
    return F.pad(t[None], (0, max(pw, 0), 0, max(ph, 0)), mode="replicate")[0]
