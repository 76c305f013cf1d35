"""Variable-rate mean-scale hyperprior for one latent, built from CompressAI's gain latent codecs.

    q (quality in [1, L]) ──► per-channel gains g_y(q), g_z(q)   (geometric interpolation
                                                                between the L trained levels)
                 g_y                     g_z        1/g_z
                  │                       │           │
    y ──►─────────×──► y_g ──►┬──► h_a ──►×──► Q ──EB──×──► h_s ──► (scales, means)
                              │                                         │
                              └────────────────► Q ──────GC─────────────┘──► ŷ_g ──► ×1/g_y ──► ŷ

The y gain is applied *before* the hyper branch so that the predicted scales follow the level
(CompressAI's ``GainHyperpriorLatentCodec`` applies its y gain after h_a, which leaves the
scales blind to the level); its z gain is used as is. Everything here runs in fp32: it decides
the bitstream.
"""

from __future__ import annotations

import math

import torch
from compressai.entropy_models import EntropyBottleneck
from compressai.latent_codecs import (
    GainHyperLatentCodec,
    GainHyperpriorLatentCodec,
    GaussianConditionalLatentCodec,
)
from compressai.layers import conv3x3
from compressai.models.base import get_scale_table
from compressai.models.utils import conv, deconv
from torch import Tensor, nn

# 256 log-spaced Gaussian scales from 0.11 to 256 (CompressAI's default has 64): with 64, the
# table scale above the predicted one costs ~2% of the y-string; with 256, ~0.3% (measured on
# the motorcycle pair at qualities 1, 3 and 6).
SCALE_TABLE = get_scale_table(levels=256)


def level_gains(levels: int, channels: int, lo: float = 0.5, hi: float = 2.0) -> nn.Parameter:
    """Initial log-gains, one row per level, geometrically spaced from ``lo`` to ``hi``."""
    ramp = torch.linspace(math.log(lo), math.log(hi), levels)[:, None]
    return nn.Parameter(ramp.repeat(1, channels))


def gain(log_gains: Tensor, q: Tensor | float) -> Tensor:
    """Gains (B or 1) x C x 1 x 1 for quality q in [1, levels]: level rows of ``log_gains``,
    geometrically interpolated for fractional q."""
    levels = log_gains.shape[0]
    q = torch.as_tensor(q, dtype=torch.float32, device=log_gains.device).reshape(-1)
    q = q.clamp(1, levels) - 1
    lo = q.floor().long().clamp(max=max(levels - 2, 0))
    hi = (lo + 1).clamp(max=levels - 1)
    t = (q - lo)[:, None]
    return torch.exp(log_gains[lo] * (1 - t) + log_gains[hi] * t)[:, :, None, None]


class VariableRateHyperprior(nn.Module):
    """Mean-scale hyperprior over an M-channel latent with ``levels`` trained rate points."""

    def __init__(self, M: int, N: int, levels: int = 6):
        super().__init__()
        self.levels = levels
        self.log_gain_y = level_gains(levels, M)
        self.log_gain_z = nn.Parameter(torch.zeros(levels, N))
        h_a = nn.Sequential(
            conv3x3(M, N),
            nn.LeakyReLU(inplace=True),
            conv(N, N),
            nn.LeakyReLU(inplace=True),
            conv(N, N),
        )
        h_s = nn.Sequential(
            deconv(N, M),
            nn.LeakyReLU(inplace=True),
            deconv(M, M * 3 // 2),
            nn.LeakyReLU(inplace=True),
            conv3x3(M * 3 // 2, M * 2),
        )
        self.codec = GainHyperpriorLatentCodec(
            latent_codec={
                "y": GaussianConditionalLatentCodec(quantizer="ste"),
                "hyper": GainHyperLatentCodec(EntropyBottleneck(N), h_a, h_s),
            }
        )

    def gain(self, q: Tensor | float) -> Tensor:
        """The latent's gain at quality q (as ``VariableRateFactorized.gain``)."""
        return gain(self.log_gain_y, q)

    def gains(self, q: Tensor | float) -> tuple[Tensor, Tensor]:
        return self.gain(q), gain(self.log_gain_z, q)

    def forward(self, y: Tensor, q: Tensor | float) -> dict:
        gy, gz = self.gains(q)
        one = torch.ones_like(gy)
        out = self.codec(y.float() * gy, one, gz, one, 1 / gz)
        return {"y_hat": out["y_hat"] / gy, "likelihoods": out["likelihoods"]}

    def max_symbols(self, h: int, w: int) -> int:
        """Symbols of the larger string (y) for an h x w image (the latent is h/16 x w/16)."""
        return self.log_gain_y.shape[1] * (h // 16) * (w // 16)

    def compress(self, y: Tensor, q: float) -> tuple[list[list[bytes]], Tensor]:
        """Returns ([y_strings, z_strings], ŷ) where ŷ equals what ``decompress`` rebuilds."""
        gy, gz = self.gains(q)
        one = torch.ones_like(gy)
        out = self.codec.compress(y.float().contiguous() * gy, one, gz, one, 1 / gz)
        return out["strings"], out["y_hat"] / gy

    def decompress(self, strings: list[list[bytes]], y_shape: tuple[int, int], q: float) -> Tensor:
        gy, gz = self.gains(q)
        z_shape = (y_shape[0] // 4, y_shape[1] // 4)
        out = self.codec.decompress(
            strings, {"y": y_shape, "hyper": z_shape}, torch.ones_like(gy), 1 / gz
        )
        return out["y_hat"] / gy


class VariableRateFactorized(nn.Module):
    """Factorised prior (CompressAI's EntropyBottleneck) over a gained latent: the reference
    ATN's entropy model, made variable-rate with the same per-level gain vectors.

        y ──► ×g(q) ──► Q ──EB──► ×1/g(q) ──► ŷ
    """

    def __init__(self, M: int, levels: int = 6):
        super().__init__()
        self.levels = levels
        self.log_gain_y = level_gains(levels, M)
        self.entropy_bottleneck = EntropyBottleneck(M)

    def gain(self, q: Tensor | float) -> Tensor:
        return gain(self.log_gain_y, q)

    def forward(self, y: Tensor, q: Tensor | float) -> dict:
        g = self.gain(q)
        y_hat, lik = self.entropy_bottleneck(y.float() * g)
        return {"y_hat": y_hat / g, "likelihoods": {"y": lik}}

    def max_symbols(self, h: int, w: int) -> int:
        return self.log_gain_y.shape[1] * (h // 16) * (w // 16)

    def compress(self, y: Tensor, q: float) -> tuple[list[list[bytes]], Tensor]:
        g = self.gain(q)
        strings = self.entropy_bottleneck.compress(y.float().contiguous() * g)
        y_hat = self.entropy_bottleneck.decompress(strings, y.shape[-2:])
        return [strings], y_hat / g

    def decompress(self, strings: list[list[bytes]], y_shape: tuple[int, int], q: float) -> Tensor:
        return self.entropy_bottleneck.decompress(strings[0], y_shape) / self.gain(q)
