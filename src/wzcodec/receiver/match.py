"""The earlier receiver (the ``align: match / cam / both`` ablations, ``avif-pf`` / ``heic-pf``):
DSIN's patch matching, or ATN's band cross-attention, then DSIN's fusion net.

    x̂ ──────────────────────────────────────────────────────┬──► R(x̂, y_syn) ──► r
    y ──► match every 20x24 patch of x̂ in y (Pearson, a     │
          Gaussian prior on the displacement) ──► y_syn ─────┘

R is DSIN's ``FusionNet`` (nine 3x3 convolutions of 32 channels, dilations 1..128) on
cat(x̂, y_syn); training starts from the shipped ``dsin`` fusion weights. ``align`` picks y's
alignment: ``match`` (above), ``cam`` (``CamAlign``: learned features of x̂ and y, 8x8 tokens,
keys within ±2 token rows; the attention mixes y's pixels into y_cam) or ``both`` (R sees x̂,
y_syn and y_cam). ``scale`` is the matching resolution (2: half). With ``use_side`` off R sees
x̂ in place of y_syn: a post-filter. Same interface as ``FlowReceiver``: ``r = receiver(x̂,
sides, bpp)`` (the rate is not an input here).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wzcodec.models.dsin import FusionNet, match_patches
from wzcodec.models.layers import BandCAM, run_bf16

ALIGNS = ("match", "cam", "both")


class CamAlign(nn.Module):
    """ATN's alignment at the pixels: a two-layer conv embedding (shared by x̂ and y), ``BandCAM``
    over ``patch``x``patch`` tokens of it (queries from x̂, keys from y, ``band`` token rows
    either way, whole rows across), and the attention applied to y's pixels: y_cam, an image
    like DSIN's y_syn but soft and learned."""

    def __init__(self, features: int = 16, patch: int = 8, dim: int = 64, band: int = 2):
        super().__init__()
        self.embed = nn.Sequential(
            nn.Conv2d(3, features, 3, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(features, features, 3, padding=1),
        )
        self.cam = BandCAM(features, patch, dim=dim, heads=1, band=band)

    def forward(self, x_hat: Tensor, y: Tensor) -> Tensor:
        H, W = x_hat.shape[-2:]
        p = self.cam.p
        pad = (0, -W % p, 0, -H % p)
        xp = F.pad(x_hat, pad, mode="replicate")
        yp = F.pad(y, pad, mode="replicate")
        out = self.cam(self.embed(xp), self.embed(yp), values=yp)
        return out[..., :H, :W]


class MatchReceiver(nn.Module):
    def __init__(
        self,
        channels: int = 32,
        use_side: bool = True,
        patch=(20, 24),
        search_v: int = 16,
        sigma: float = 150.0,
        scale: int = 2,
        align: str = "match",
    ):
        super().__init__()
        if align not in ALIGNS:
            raise ValueError(f"align: {align!r} is not one of {', '.join(ALIGNS)}, flow")
        self.use_side, self.patch, self.align_mode = use_side, tuple(patch), align
        self.search_v, self.sigma, self.scale = search_v, sigma, scale
        self.cam = CamAlign() if use_side and align != "match" else None
        self.refiner = FusionNet(channels, inputs=9 if use_side and align == "both" else 6)
        self.bf16 = False

    def align(self, x_hat: Tensor, ys: list[Tensor]) -> Tensor:
        """y aligned to x̂ for R: y_syn (``match``), y_cam (``CamAlign``, from the first side
        image) or both, by ``align``."""
        parts = []
        if self.align_mode in ("match", "both"):
            with torch.no_grad():
                parts.append(self.match(x_hat, ys))
        if self.cam is not None:
            parts.append(run_bf16(self.bf16, self.cam, x_hat, ys[0]))
        return parts[0] if len(parts) == 1 else torch.cat(parts, 1)

    def match(self, x_hat: Tensor, ys: list[Tensor]) -> Tensor:
        """DSIN's y_syn over one or several side images: each patch from the side image whose
        match scores highest (correlation less the displacement prior; ties: the earlier)."""
        kw = {"search_v": self.search_v, "sigma": self.sigma, "scale": self.scale}
        if len(ys) == 1:
            return match_patches(x_hat, ys[0], ys[0], self.patch, **kw)
        best, top = None, None
        for y in ys:
            syn, score = match_patches(x_hat, y, y, self.patch, with_score=True, **kw)
            if best is None:
                best, top = syn, score
            else:
                better = score > top
                best = torch.where(better, syn, best)
                top = torch.where(better, score, top)
        return best

    def forward(self, x_hat: Tensor, sides: list[Tensor] | None, bpp=None) -> Tensor:
        """r = R(x̂, y aligned), or R(x̂, x̂) for the post-filter."""
        y_syn = self.align(x_hat, sides) if self.use_side else x_hat
        return run_bf16(self.bf16, self.refiner, x_hat, y_syn)
