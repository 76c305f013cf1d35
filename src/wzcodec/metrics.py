"""Quality and rate metrics on HxWx3 uint8 images, and BD-rate (the ``bjontegaard`` package)."""

from __future__ import annotations

import math

import numpy as np
import torch
from pytorch_msssim import ms_ssim as _ms_ssim


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB over all channels of two uint8 images (inf when identical)."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def ms_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """MS-SSIM (5 scales). The Gaussian window shrinks from 11 for images too small for it
    (the coarsest scale needs a side > (win - 1) * 16); NaN below 48 px."""
    side = min(a.shape[0], a.shape[1])
    win = 11
    while win >= 3 and side <= (win - 1) * 16:
        win -= 2
    if win < 3:
        return math.nan
    ta = torch.from_numpy(np.require(a, requirements=["W"])).permute(2, 0, 1)[None].float()
    tb = torch.from_numpy(np.require(b, requirements=["W"])).permute(2, 0, 1)[None].float()
    return float(_ms_ssim(ta, tb, data_range=255.0, win_size=win))


def ms_ssim_db(value: float) -> float:
    """MS-SSIM in dB as the papers report it: -10 log10(1 - MS-SSIM)."""
    return math.inf if value >= 1 else -10 * math.log10(1 - value)


def bpp(num_bytes: int, height: int, width: int) -> float:
    return num_bytes * 8 / (height * width)


def bd_rate(rate_anchor, dist_anchor, rate_test, dist_test) -> float:
    """Bjøntegaard delta rate (%) of test against anchor: negative = fewer bits at equal quality.
    Piecewise cubic (pchip) interpolation over the overlapping quality range."""
    import warnings

    import bjontegaard as bd

    with warnings.catch_warnings():  # it warns on partial overlap; the plots show the ranges
        warnings.simplefilter("ignore")
        return float(
            bd.bd_rate(
                np.asarray(rate_anchor),
                np.asarray(dist_anchor),
                np.asarray(rate_test),
                np.asarray(dist_test),
                method="pchip",
                require_matching_points=False,
            )
        )
