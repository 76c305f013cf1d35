"""``atn-paper``: ATN as in the reference code (WACV 2023), to reproduce the paper's setting.

Same data flow as ``atn`` (NDIC + CAMs after D_x stages 1..3, outputs concatenated), with the
reference choices: N = M = 192; the reference CAM (``layers.ChannelPatchCAM``: per-channel 4x4
patch tokens, Linear -> 256, one shared LayerNorm, 8 heads of dim 256, dropout 0.1), which fixes
the input size (default 128x256, the paper protocol); a factorised prior on v_x (made
variable-rate with the same gain vectors as every model here).
"""

from __future__ import annotations

from torch import Tensor, nn

from wzcodec.models.latent import VariableRateFactorized
from wzcodec.models.layers import ChannelPatchCAM
from wzcodec.models.ndic import NDIC
from wzcodec.models.registry import register


@register("atn-paper")
class ATNPaper(NDIC):
    factor = 16

    def __init__(self, height: int = 128, width: int = 256, N: int = 192, M: int = 192, **kw):
        super().__init__(N=N, M=M, **kw)
        self.fixed_size = (height, width)
        self.cams = nn.ModuleList(
            ChannelPatchCAM(self.N, height // s, width // s) for s in (8, 4, 2)
        )

    def make_latent(self) -> nn.Module:
        return VariableRateFactorized(self.M, self.levels)

    def d_x_inputs(self) -> list[int]:
        return [2 * self.M, 2 * self.N, 2 * self.N, 2 * self.N]

    def forward(self, x: Tensor, y: Tensor | None = None, q: Tensor | float = 1.0) -> dict:
        if tuple(x.shape[-2:]) != self.fixed_size:
            h, w = self.fixed_size
            raise ValueError(
                f"atn-paper codes {w}x{h} images only, got {x.shape[-1]}x{x.shape[-2]}"
            )
        return super().forward(x, y, q)
