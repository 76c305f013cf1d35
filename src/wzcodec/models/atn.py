"""``atn`` (the default model): NDIC plus cross-attention feature alignment in the decoder,
at any resolution (Mital et al., WACV 2023, with resolution-agnostic attention).

    v̂_x,w ─► Dx1 ─► f1 ─┬─cat─► Dx2 ─► f2 ─┬─cat─► Dx3 ─► f3 ─┬─cat─► Dx4 ─► x̂
                        │                  │                  │
            CAM(f1, g1) ┘      CAM(f2, g2) ┘      CAM(f3, g3) ┘
                 ▲ keys/values      ▲                  ▲
    v_y,w ─► Dy1 ─► g1 ───► Dy2 ─► g2 ──────► Dy3 ─► g3         (H/8, H/4, H/2)

Each CAM returns y's decoder features re-arranged to where x's features match them (queries
from D_x, keys and values from D_y, one token per 8x8 image pixels at every scale, attention
over a band of token rows: see ``layers.BandCAM``); the next stage reads both, as in the paper
(concatenation, so D_x stages 2..4 take 2N channels). Mean-scale hyperprior on v_x.
"""

from __future__ import annotations

from torch import nn

from wzcodec.models.layers import BandCAM
from wzcodec.models.ndic import NDIC
from wzcodec.models.registry import register


@register("atn")
class ATN(NDIC):
    def __init__(self, attn_dim: int = 128, heads: int = 4, band: int = 2, window: int = 0, **kw):
        super().__init__(**kw)
        self.cams = nn.ModuleList(
            BandCAM(self.N, patch=p, dim=attn_dim, heads=heads, band=band, window=window)
            for p in (1, 2, 4)
        )

    def d_x_inputs(self) -> list[int]:
        return [2 * self.M, 2 * self.N, 2 * self.N, 2 * self.N]
