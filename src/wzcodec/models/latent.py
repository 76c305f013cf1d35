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

import torch
from compressai.entropy_models import EntropyBottleneck
from compressai.latent_codecs import (
    GainHyperLatentCodec,
    GainHyperpriorLatentCodec,
    GaussianConditionalLatentCodec,
)
from compressai.layers import conv3x3
from compressai.models.utils import conv, deconv
from torch import Tensor, nn


class VariableRateHyperprior(nn.Module):
    """Mean-scale hyperprior over an M-channel latent with ``levels`` trained rate points."""

    def __init__(
        self, M: int, N: int, levels: int = 6, gain_range: tuple[float, float] = (0.5, 2.0)
    ):
        super().__init__()
        self.levels = levels
        lo, hi = torch.log(torch.tensor(gain_range[0])), torch.log(torch.tensor(gain_range[1]))
        init = torch.linspace(0, 1, levels)[:, None] * (hi - lo) + lo
        self.log_gain_y = nn.Parameter(init.repeat(1, M))
        self.log_gain_z = nn.Parameter(torch.zeros(levels, N))
        h_a = nn.Sequential(
            conv3x3(M, N), nn.LeakyReLU(inplace=True),
            conv(N, N), nn.LeakyReLU(inplace=True),
            conv(N, N),
        )  # fmt: skip
        h_s = nn.Sequential(
            deconv(N, M), nn.LeakyReLU(inplace=True),
            deconv(M, M * 3 // 2), nn.LeakyReLU(inplace=True),
            conv3x3(M * 3 // 2, M * 2),
        )  # fmt: skip
        self.codec = GainHyperpriorLatentCodec(
            latent_codec={
                "y": GaussianConditionalLatentCodec(quantizer="ste"),
                "hyper": GainHyperLatentCodec(EntropyBottleneck(N), h_a, h_s),
            }
        )

    def gains(self, q: Tensor | float) -> tuple[Tensor, Tensor]:
        """Gains (B or 1) x C x 1 x 1 for quality q in [1, levels]; fractional q interpolates."""
        q = torch.as_tensor(q, dtype=torch.float32, device=self.log_gain_y.device).reshape(-1)
        q = q.clamp(1, self.levels) - 1
        lo = q.floor().long().clamp(max=self.levels - 2) if self.levels > 1 else q.long()
        t = (q - lo)[:, None]
        hi = (lo + 1).clamp(max=self.levels - 1)

        def interp(p: Tensor) -> Tensor:
            return torch.exp(p[lo] * (1 - t) + p[hi] * t)[:, :, None, None]

        return interp(self.log_gain_y), interp(self.log_gain_z)

    def forward(self, y: Tensor, q: Tensor | float) -> dict:
        gy, gz = self.gains(q)
        one = torch.ones_like(gy)
        out = self.codec(y.float() * gy, one, gz, one, 1 / gz)
        return {"y_hat": out["y_hat"] / gy, "likelihoods": out["likelihoods"]}

    def compress(self, y: Tensor, q: float) -> tuple[list[list[bytes]], Tensor]:
        """Returns ([y_strings, z_strings], ŷ) where ŷ equals what ``decompress`` rebuilds."""
        gy, gz = self.gains(q)
        one = torch.ones_like(gy)
        out = self.codec.compress(y.float() * gy, one, gz, one, 1 / gz)
        return out["strings"], out["y_hat"] / gy

    def decompress(self, strings: list[list[bytes]], y_shape: tuple[int, int], q: float) -> Tensor:
        gy, gz = self.gains(q)
        z_shape = (y_shape[0] // 4, y_shape[1] // 4)
        out = self.codec.decompress(
            strings, {"y": y_shape, "hyper": z_shape}, torch.ones_like(gy), 1 / gz
        )
        return out["y_hat"] / gy
