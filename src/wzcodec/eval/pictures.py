"""``wz visualize``: what the decoder takes from each source, and where the attention looks.

common_local      x | y | full decode | from w alone (v̂_x = 0) | from v̂_x alone (w = 0, no y)
                  (the poster's "common and local information" figure; ndic, atn, atn-paper)
attention_maps    for one pixel of x: each BandCAM's attention weights (head 0) over y,
                  upsampled to pixels and overlaid on y; the pixel is marked on x (atn)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wzcodec.codec import Codec
from wzcodec.errors import WzError
from wzcodec.images import as_rgb, crop_to, pad_to, save_image, to_tensor, to_uint8


def _prepare(codec: Codec, x, y):
    xr, yr = as_rgb(x), as_rgb(y)
    if xr.shape != yr.shape:
        raise WzError(
            f"side image is {yr.shape[1]}x{yr.shape[0]}, x is {xr.shape[1]}x{xr.shape[0]}"
        )
    f = codec.model.factor
    return xr, yr, pad_to(to_tensor(xr)[None], f), pad_to(to_tensor(yr)[None], f)


@torch.inference_mode()
def common_local(codec: Codec, x, y, out: Path, quality: float | None = None) -> Path:
    from wzcodec.models.ndic import NDIC

    m = codec.model
    if not isinstance(m, NDIC):
        raise WzError(f"{codec.name} has no common-information branch (use ndic, atn or atn-paper)")
    q = codec._quality(quality)
    xr, yr, xt, yt = _prepare(codec, x, y)
    h, w = xr.shape[:2]
    v_hat = m.latent(m.e_x(xt), q)["y_hat"]
    side = m.side(yt, xt)
    no_y = m.side(None, xt)
    no_y["w"] = torch.zeros_like(no_y["w"])
    panels = [
        m.decode_x(v_hat, side),
        m.decode_x(torch.zeros_like(v_hat), side),
        m.decode_x(v_hat, no_y),
    ]
    row = [xr, yr] + [to_uint8(crop_to(p, h, w)) for p in panels]
    path = Path(out) / f"{codec.name}_common_local.png"
    save_image(path, np.concatenate(row, axis=1))
    return path


def _heat(a: np.ndarray) -> np.ndarray:
    """HxW in [0, 1] -> HxWx3 uint8 (matplotlib's inferno)."""
    from matplotlib import colormaps

    return (colormaps["inferno"](a)[..., :3] * 255).astype(np.uint8)


@torch.inference_mode()
def attention_maps(
    codec: Codec, x, y, pixel: tuple[int, int], out: Path, quality: float | None = None
) -> Path:
    from wzcodec.models.base import CodecModel

    m = codec.model
    cams = m.cams if isinstance(m, CodecModel) else None
    if cams is None or not all(hasattr(c, "band") for c in cams):
        raise WzError(f"{codec.name} has no spatial attention maps (use atn)")
    q = codec._quality(quality)
    xr, yr, xt, yt = _prepare(codec, x, y)
    h, w = xr.shape[:2]
    px, py = pixel
    if not (0 <= px < w and 0 <= py < h):
        raise WzError(f"pixel {px},{py} is outside the {w}x{h} image")
    for c in cams:
        c.keep_attention = True
    try:
        m(xt, yt, q)
        maps = [c.last_attention[0] for c in cams]  # (R, W, 2b+1, W)
    finally:
        for c in cams:
            c.keep_attention, c.last_attention = False, None
    H, W = xt.shape[-2:]
    marked = xr.copy()
    marked[max(py - 3, 0) : py + 4, max(px - 3, 0) : px + 4] = (0, 255, 0)
    row = [marked]
    for att, cam in zip(maps, cams, strict=True):
        R, Wt = att.shape[0], att.shape[1]
        r, c = py * R // H, px * Wt // W
        grid = torch.zeros(R, Wt)
        for k, dr in enumerate(range(-cam.band, cam.band + 1)):
            rr = min(max(r + dr, 0), R - 1)
            grid[rr] += att[r, c, k]
        grid = grid / grid.max().clamp_min(1e-12)
        up = torch.nn.functional.interpolate(grid[None, None], size=(H, W), mode="nearest")[0, 0]
        heat = _heat(up[:h, :w].numpy())
        row.append((0.45 * yr + 0.55 * heat).astype(np.uint8))
    path = Path(out) / f"{codec.name}_attention_{px}_{py}.png"
    save_image(path, np.concatenate(row, axis=1))
    return path
