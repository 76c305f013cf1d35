"""Validation of an end-to-end model: estimated bpp and PSNR, and how much it reads y."""

from __future__ import annotations

import math

import numpy as np
import torch

from wzcodec.models.loss import RateDistortionLoss


def psnr(mse: float) -> float:
    return -10 * math.log10(max(mse, 1e-12))


@torch.no_grad()
def validate(model, pairs: list[tuple[torch.Tensor, torch.Tensor]], levels: list[float]) -> dict:
    """Mean estimated bpp and PSNR at the given levels. Side-information models also report
    PSNR with an unrelated y (another pair's) and with y = 0: a gap near zero means the side
    path is dead (a side path can learn to ignore y)."""
    model.eval()
    res: dict[str, float] = {}
    crit = RateDistortionLoss()
    dev = next(model.parameters()).device
    zero = torch.zeros(1, device=dev)
    pairs = [(x.to(dev), y.to(dev)) for x, y in pairs]
    for q in levels:
        bpp, true_y, other_y, zero_y = [], [], [], []
        for i, (x, y) in enumerate(pairs):
            m = crit(model(x, y, q), x, y, zero)
            bpp.append(m["bpp"].item())
            true_y.append(psnr(m["mse"].item()))
            if model.uses_side:
                other = pairs[(i + 1) % len(pairs)][1]
                other = other if other.shape == y.shape else y.flip(-1).flip(-2)
                other_y.append(psnr(crit(model(x, other, q), x, y, zero)["mse"].item()))
                zero_y.append(
                    psnr(crit(model(x, torch.zeros_like(y), q), x, y, zero)["mse"].item())
                )
        res[f"val_bpp_q{q:g}"] = float(np.mean(bpp))
        res[f"val_psnr_q{q:g}"] = float(np.mean(true_y))
        if other_y:
            res[f"val_gap_unrelated_q{q:g}"] = float(np.mean(true_y) - np.mean(other_y))
            res[f"val_gap_zero_q{q:g}"] = float(np.mean(true_y) - np.mean(zero_y))
    model.train()
    return res
