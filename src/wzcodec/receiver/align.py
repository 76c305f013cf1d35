"""Dense alignment of a side image y onto the decode x̂: OpenCV's DIS optical flow, a sub-pixel
warp, and a per-pixel confidence.

    x̂ (gray) ──► DIS flow x̂→y ──► f ──► y(p + f(p)), bilinear ──────────────────► y_w
    y (gray) ──► DIS flow y→x̂ ──► b ──► |f(p) + b(p + f(p))| ──► consistency ─┐
                                         p + f(p) inside y? ───► inside ──────┼─► conf (3 planes)
                 |blur(y_w) − blur(x̂)| (the low-passes agree?) ──► agreement ─┘

Everything is numpy / OpenCV on uint8 images and costs time linear in the pixels (two DIS
flows dominate: ~0.1 s each at 1242x375 with the ``medium`` preset on one core). With several
side images, each is aligned alone and every pixel takes the side whose confidence is highest
(``align_many``).

Where the flow leaves y, the warp repeats y's border and ``inside`` is 0. The three
confidence planes are in [0, 1], 1 meaning "trust y here"; the fusion net takes them as they
are (``fusion.py``), so it can learn how much each one matters.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
FB_SCALE = 1.0  # px: a forward-backward error of this size halves the consistency
LP_SIGMA = 2.0  # px: the low-pass under which x̂ and y_w should agree
LP_SCALE = 0.04  # a low-pass difference of this size (of 1.0) gives agreement exp(-1)
CONF_PLANES = 3


@dataclass
class Aligned:
    """y aligned onto x̂: ``y`` (HxWx3 float32 in [0, 1]) and ``conf`` (HxWx3 float32 in
    [0, 1]: forward-backward consistency, inside the frame, low-pass agreement)."""

    y: np.ndarray
    conf: np.ndarray

    @property
    def trust(self) -> np.ndarray:
        """One number per pixel: the product of the three confidence planes (HxW)."""
        return self.conf.prod(axis=2)


def gray(img: np.ndarray) -> np.ndarray:
    """HxW uint8 luma of an HxWx3 uint8 image (an HxW image as it is)."""
    if img.ndim == 2:
        return np.ascontiguousarray(img)
    return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)


def flow(src: np.ndarray, dst: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Dense flow f (HxWx2 float32, x then y) with src(p) ≈ dst(p + f(p)), by DIS."""
    dis = cv2.DISOpticalFlow_create(PRESETS[preset])
    return dis.calc(gray(src), gray(dst), None)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))


def warp(img: np.ndarray, f: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """img sampled at p + f(p) (sub-pixel), y's border repeated outside it."""
    h, w = f.shape[:2]
    gx, gy = _grid(h, w)
    # clamped by hand: OpenCV's BORDER_REPLICATE gives 0 for points far outside the image
    mx = np.clip(gx + f[..., 0], 0, w - 1)
    my = np.clip(gy + f[..., 1], 0, h - 1)
    return cv2.remap(img, mx, my, interpolation, cv2.BORDER_REPLICATE)


def align(x_hat: np.ndarray, y: np.ndarray, preset: str = "medium") -> Aligned:
    """y (HxWx3 uint8, the size of x̂) warped onto x̂ (HxWx3 uint8), with its confidence."""
    if x_hat.shape[:2] != y.shape[:2]:
        raise ValueError(
            f"side image is {y.shape[1]}x{y.shape[0]}, x̂ {x_hat.shape[1]}x{x_hat.shape[0]}"
        )
    h, w = x_hat.shape[:2]
    fwd = flow(x_hat, y, preset)
    bwd = flow(y, x_hat, preset)
    y_w = warp(y, fwd).astype(np.float32) / 255
    err = np.linalg.norm(fwd + warp(bwd, fwd), axis=2)
    consistency = 1 / (1 + (err / FB_SCALE) ** 2)
    gx, gy = _grid(h, w)
    px, py = gx + fwd[..., 0], gy + fwd[..., 1]
    inside = ((px >= 0) & (px <= w - 1) & (py >= 0) & (py <= h - 1)).astype(np.float32)
    xf = x_hat.astype(np.float32) / 255
    lp_x = cv2.GaussianBlur(xf, (0, 0), LP_SIGMA)
    lp_y = cv2.GaussianBlur(y_w, (0, 0), LP_SIGMA)
    diff = np.abs(lp_y - lp_x)
    diff = diff.mean(axis=2) if diff.ndim == 3 else diff
    agreement = np.exp(-diff / LP_SCALE)
    conf = np.stack([consistency, inside, agreement], axis=2).astype(np.float32)
    return Aligned(y_w, conf)


def align_many(x_hat: np.ndarray, ys: list[np.ndarray], preset: str = "medium") -> Aligned:
    """Several side images: each aligned alone; every pixel takes the side it trusts most
    (``Aligned.trust``; ties keep the earlier side image)."""
    if not ys:
        raise ValueError("no side image")
    best = align(x_hat, ys[0], preset)
    if len(ys) == 1:
        return best
    top = best.trust
    for y in ys[1:]:
        a = align(x_hat, y, preset)
        t = a.trust
        better = (t > top)[..., None]
        best = Aligned(np.where(better, a.y, best.y), np.where(better, a.conf, best.conf))
        top = np.maximum(t, top)
    return best
