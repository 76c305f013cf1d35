"""The papers' rate-distortion loss, per sample (so every sample may have its own λ):

    L = (R_x + λ·D_x) + α·(R_y + λ·D_y) + β·R_w

R = Σ −log2 p / (H·W) (bits per pixel); D = 255²·MSE on [0, 1] images, or 1 − MS-SSIM.
Models report the likelihoods of what is transmitted under ``likelihoods``; side-information
models may add ``y_hat`` (the y-decoder's output), ``likelihoods_y`` and ``likelihoods_w``.
"""

from __future__ import annotations

import math

import torch
from pytorch_msssim import ms_ssim
from torch import Tensor


def bits_per_pixel(likelihoods: dict[str, Tensor], num_pixels: int) -> Tensor:
    """Per-sample bpp from a dict of likelihood tensors (B x ...)."""
    return sum(torch.log(lk.float()).flatten(1).sum(1) for lk in likelihoods.values()) / (
        -math.log(2) * num_pixels
    )


def distortion(a: Tensor, b: Tensor, metric: str) -> Tensor:
    """Per-sample distortion: 255²·MSE, or 1 − MS-SSIM (window 7, as the reference code)."""
    if metric == "mse":
        return (a.float() - b.float()).pow(2).flatten(1).mean(1) * 255**2
    if metric == "ms-ssim":
        return 1 - ms_ssim(
            a.float().clamp(0, 1), b.float(), data_range=1.0, size_average=False, win_size=7
        )
    raise ValueError(f"distortion must be 'mse' or 'ms-ssim', not {metric!r}")


class RateDistortionLoss:
    def __init__(self, metric: str = "mse", alpha: float = 0.0, beta: float = 0.0):
        self.metric, self.alpha, self.beta = metric, alpha, beta

    def __call__(self, out: dict, x: Tensor, y: Tensor, lmbda: Tensor) -> dict[str, Tensor]:
        n = x.shape[-2] * x.shape[-1]
        r_x = bits_per_pixel(out["likelihoods"], n)
        d_x = distortion(out["x_hat"], x, self.metric)
        loss = r_x + lmbda * d_x
        if self.alpha and "y_hat" in out:
            r_y = bits_per_pixel(out["likelihoods_y"], n) if "likelihoods_y" in out else 0
            loss = loss + self.alpha * (r_y + lmbda * distortion(out["y_hat"], y, self.metric))
        if self.beta and "likelihoods_w" in out:
            loss = loss + self.beta * bits_per_pixel(out["likelihoods_w"], n)
        mse = (out["x_hat"].detach().float().clamp(0, 1) - x).pow(2).flatten(1).mean(1)
        return {"loss": loss.mean(), "bpp": r_x.detach(), "mse": mse}
