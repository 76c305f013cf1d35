"""``hyperprior``: Ballé et al. 2018 mean-scale hyperprior, variable rate (single-image baseline).

    x ──► g_a ──► y ──► VariableRateHyperprior(q) ──► ŷ ──► g_s ──► x̂
                       (gains, h_a/h_s, EB + GC; bits)

g_a: conv5x5/2 + GDN (x3), conv5x5/2 -> M channels (H/16). g_s mirrors it with IGDN.
The side image is accepted and ignored, so every model shares one calling convention:
``forward(x, y, q)``, ``compress(x, q)``, ``decompress(strings, padded_size, q, side)``.
"""

from __future__ import annotations

from compressai.layers import GDN
from compressai.models.utils import deconv
from torch import Tensor, nn

from wzcodec.models.base import CodecModel
from wzcodec.models.latent import VariableRateHyperprior
from wzcodec.models.layers import analysis, run_bf16
from wzcodec.models.registry import register


def synthesis(M: int, N: int, cout: int = 3) -> nn.Sequential:
    return nn.Sequential(
        deconv(M, N),
        GDN(N, inverse=True),
        deconv(N, N),
        GDN(N, inverse=True),
        deconv(N, N),
        GDN(N, inverse=True),
        deconv(N, cout),
    )


@register("hyperprior")
class Hyperprior(CodecModel):
    uses_side = False

    def __init__(self, N: int = 128, M: int = 192, levels: int = 6):
        super().__init__()
        self.levels = levels
        self.bf16 = False  # bf16 autocast: g_a and g_s in training, g_s only at inference
        self.g_a = analysis(N, M)
        self.g_s = synthesis(M, N)
        self.latent = VariableRateHyperprior(M, N, levels)

    def forward(self, x: Tensor, y: Tensor | None = None, q: Tensor | float = 1.0) -> dict:
        v = run_bf16(self.bf16 and self.training, self.g_a, x)  # encoder: fp32 at inference
        out = self.latent(v, q)
        x_hat = run_bf16(self.bf16, self.g_s, out["y_hat"])
        return {"x_hat": x_hat, "likelihoods": out["likelihoods"]}

    def compress(self, x: Tensor, q: float) -> dict:
        strings, _ = self.latent.compress(self.g_a(x), q)
        return {"strings": strings}

    def decompress(
        self,
        strings: list[list[bytes]],
        size: tuple[int, int],
        q: float,
        side: Tensor | None = None,
    ) -> Tensor:
        v_hat = self.latent.decompress(strings, (size[0] // 16, size[1] // 16), q)
        return run_bf16(self.bf16, self.g_s, v_hat)
