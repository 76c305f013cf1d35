"""``dsin``: Deep Side Information Network (Ayzik & Avidan, ECCV 2020) over the ``hyperprior``.

    x ──► hyperprior encoder ──► bits ──► hyperprior decoder ──► x̂_ae ─────────────┬─► + ──► x̂
                                                                     │            │   ▲
    y ──► hyperprior (same codec, same q, at the decoder) ──► ŷ      │            │   │
          for each 20x24 patch of x̂_ae: the best Pearson match in ŷ  ◄┘            │   │
          (Gaussian prior on the displacement) ──► cut that patch from y ──► y_syn ─┴► F ┘

F is a 9-layer dilated 3x3 conv net (32 channels, dilations 1..128, LeakyReLU 0.2) on
cat(x̂_ae, y_syn); its output is added to x̂_ae (the last layer starts at zero, so an untrained
F leaves the hyperprior's reconstruction unchanged). The bitstream is the hyperprior's. Without
a side image the decoder returns x̂_ae. Matching searches every column and ±``search_v`` rows.

``dsin-atn`` (an addition, not in either paper) is the same refinement over ``atn`` instead of
the hyperprior: x̂_ae is atn's decoding of x with y (its attention already used y), ŷ is atn's
decoding of y without a side image, and the bitstream is atn's. It exists because the two
gains add up: DSIN's patch matching finds places that atn's attention does not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wzcodec.models.atn import ATN
from wzcodec.models.base import CodecModel
from wzcodec.models.hyperprior import Hyperprior
from wzcodec.models.layers import run_bf16
from wzcodec.models.registry import register


class FusionNet(nn.Module):
    def __init__(
        self, channels: int = 32, dilations=(1, 2, 4, 8, 16, 32, 64, 128), inputs: int = 6
    ):
        super().__init__()
        layers: list[nn.Module] = []
        cin = inputs  # x̂ and y_syn (and any further aligned side images)
        for d in dilations:
            layers += [nn.Conv2d(cin, channels, 3, padding=d, dilation=d), nn.LeakyReLU(0.2)]
            cin = channels
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels, 3, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x_hat: Tensor, y_syn: Tensor) -> Tensor:
        return self.head(self.body(torch.cat([x_hat, y_syn], 1)))


def match_patches(
    x_hat: Tensor,
    y_hat: Tensor,
    y: Tensor,
    patch: tuple[int, int] = (20, 24),
    search_v: int = 16,
    sigma: float = 150.0,
    scale: int = 1,
    with_score: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """y_syn: every ``patch`` of x_hat replaced by the patch of y at the location where ŷ best
    matches it (Pearson correlation minus d²/(2σ²), d the displacement in pixels).

    ``scale`` > 1 matches on x_hat and ŷ averaged over ``scale`` x ``scale`` pixels (the patch,
    search range and σ shrink with it; about scale⁴ times less work) and cuts the patches from
    the full-size y at the displacements found, rounded to ``scale`` pixels. ``with_score``
    also returns each pixel's match score (B, 1, H, W): the correlation of its patch's match,
    so that a fusion net can tell a good match from a poor one."""
    if scale > 1:
        return _match_scaled(x_hat, y_hat, y, patch, search_v, sigma, scale, with_score)
    B, _, H, W = x_hat.shape
    ph, pw = patch
    Hp, Wp = -(-H // ph) * ph, -(-W // pw) * pw
    gx = F.pad(x_hat.mean(1, keepdim=True), (0, Wp - W, 0, Hp - H), mode="replicate")
    pad = (0, 0, search_v, search_v + Hp - H)  # rows above and below the search range
    gy = F.pad(y_hat.mean(1, keepdim=True), pad, mode="replicate")
    yp = F.pad(y, pad, mode="replicate")
    n = ph * pw
    box = torch.ones(1, 1, ph, pw, device=x_hat.device)
    out = torch.empty(B, 3, Hp, Wp, device=x_hat.device, dtype=y.dtype)
    scores = torch.empty(B, 1, Hp // ph, Wp // pw, device=x_hat.device)
    cols = torch.arange(W - pw + 1, device=x_hat.device, dtype=torch.float32)
    rows = torch.arange(2 * search_v + 1, device=x_hat.device, dtype=torch.float32) - search_v
    du = torch.arange(ph, device=x_hat.device)
    dv = torch.arange(pw, device=x_hat.device)
    for b in range(B):
        for r in range(Hp // ph):
            band = gx[b : b + 1, :, r * ph : (r + 1) * ph]  # (1, 1, ph, Wp)
            kernels = band.unfold(3, pw, pw).permute(3, 0, 1, 2, 4).reshape(-1, 1, ph, pw)
            kernels = kernels - kernels.mean((2, 3), keepdim=True)
            kernels = kernels / (kernels.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-6)
            region = gy[b : b + 1, :, r * ph : r * ph + ph + 2 * search_v, :W]
            num = F.conv2d(region, kernels)  # (1, P, 2sv+1, W-pw+1)
            s1, s2 = F.conv2d(region, box), F.conv2d(region * region, box)
            den = (s2 - s1 * s1 / n).clamp_min(1e-6).sqrt()
            corr = num / den
            x0 = torch.arange(kernels.shape[0], device=x_hat.device, dtype=torch.float32) * pw
            dist2 = (cols[None, None, :] - x0[:, None, None]) ** 2 + (rows[None, :, None] ** 2)
            score = corr[0] - dist2 / (2 * sigma**2)
            top, best = score.flatten(1).max(1)
            scores[b, 0, r] = top
            dy, dx = best // score.shape[2], best % score.shape[2]
            # gather every patch at once (no per-patch loop: one host sync per patch on a GPU)
            src_r = (dy + r * ph)[:, None, None] + du[None, :, None]  # (P, ph, 1)
            src_c = dx[:, None, None] + dv[None, None, :]  # (P, 1, pw)
            patches = yp[b][:, src_r, src_c]  # (3, P, ph, pw)
            out[b, :, r * ph : (r + 1) * ph] = patches.permute(0, 2, 1, 3).reshape(3, ph, -1)
    if not with_score:
        return out[..., :H, :W]
    full = scores.repeat_interleave(ph, 2).repeat_interleave(pw, 3)
    return out[..., :H, :W], full[..., :H, :W]


def _match_scaled(x_hat, y_hat, y, patch, search_v, sigma, s, with_score):
    """``match_patches`` at 1/s resolution (see there): match the pooled images, whose y is
    the pooled y's position grid, then cut full-size patches at s times the displacements."""
    B, C, H, W = x_hat.shape
    ph, pw = patch[0] // s, patch[1] // s
    Hs, Ws = -(-H // s), -(-W // s)

    def pool(t: Tensor) -> Tensor:  # replicate-pad to a multiple of s, then s x s means
        t = F.pad(t.mean(1, keepdim=True), (0, Ws * s - W, 0, Hs * s - H), mode="replicate")
        return F.avg_pool2d(t, s)

    gx, gy = pool(x_hat), pool(y_hat)
    # the displacement of every pooled patch: match the pooled images against a y that holds,
    # as its three channels, the row and column of each pooled position (and a constant)
    rows = torch.arange(Hs, dtype=torch.float32, device=x_hat.device).view(1, 1, Hs, 1)
    cols = torch.arange(Ws, dtype=torch.float32, device=x_hat.device).view(1, 1, 1, Ws)
    grid = torch.cat([rows.expand(B, 1, Hs, Ws), cols.expand(B, 1, Hs, Ws), gy * 0], 1)
    found, score = match_patches(
        gx.expand(B, 3, Hs, Ws), gy.expand(B, 3, Hs, Ws), grid, (ph, pw), search_v // s,
        sigma / s, with_score=True,
    )  # fmt: skip
    # found[:, 0/1] = the source row/column of each pooled pixel; its offset from the pixel's
    # own position, times s, is the full-size displacement (constant over each patch)
    dr = (found[:, 0] - rows[:, 0]).round().long() * s  # (B, Hs, Ws)
    dc = (found[:, 1] - cols[:, 0]).round().long() * s
    dr = dr.repeat_interleave(s, 1).repeat_interleave(s, 2)[:, :H, :W]
    dc = dc.repeat_interleave(s, 1).repeat_interleave(s, 2)[:, :H, :W]
    r = (torch.arange(H, device=x_hat.device).view(1, H, 1) + dr).clamp(0, H - 1)
    c = (torch.arange(W, device=x_hat.device).view(1, 1, W) + dc).clamp(0, W - 1)
    idx = (r * W + c).view(B, 1, H * W).expand(B, C, H * W)
    out = torch.gather(y.flatten(2), 2, idx).view(B, C, H, W)
    if not with_score:
        return out
    score = score.repeat_interleave(s, 2).repeat_interleave(s, 3)[..., :H, :W]
    return out, score


@register("dsin")
class DSIN(CodecModel):
    uses_side = True

    def __init__(
        self,
        N: int = 128,
        M: int = 192,
        levels: int = 6,
        search_v: int = 16,
        sigma: float = 150.0,
        **base_config,
    ):
        super().__init__()
        self.levels, self.search_v, self.sigma = levels, search_v, sigma
        self.base = self.make_base(N, M, levels, **base_config)
        self.fusion = FusionNet()
        self.bf16 = False

    def make_base(self, N: int, M: int, levels: int, **base_config) -> CodecModel:
        """The codec under the refinement; ``base_config``: its own further arguments."""
        if base_config:
            raise TypeError(f"dsin: unknown config {sorted(base_config)}")
        return Hyperprior(N, M, levels)

    def load_hyperprior(self, state: dict[str, Tensor]) -> set[str]:
        self.base.load_state_dict(state)
        return {"base." + k for k, _ in self.base.named_parameters()}

    def refine(self, x_ae: Tensor, y: Tensor | None, q) -> Tensor:
        if y is None:
            return x_ae
        with torch.no_grad():
            was = self.base.training
            self.base.eval()
            y_hat = self.base(y, None, q)["x_hat"]  # y through the same codec, as at the decoder
            self.base.train(was)
            y_syn = match_patches(x_ae.detach(), y_hat, y, search_v=self.search_v, sigma=self.sigma)
        return x_ae + run_bf16(self.bf16, self.fusion, x_ae, y_syn)

    def forward(self, x: Tensor, y: Tensor | None = None, q: Tensor | float = 1.0) -> dict:
        self.base.bf16 = self.bf16
        out = self.base(x, y if self.base.uses_side else None, q)
        return {
            "x_hat": self.refine(out["x_hat"], y, q),
            "x_hat_ae": out["x_hat"],
            "likelihoods": out["likelihoods"],
        }

    def max_symbols(self, h: int, w: int) -> int:
        return self.base.max_symbols(h, w)

    def compress(self, x: Tensor, q: float) -> dict:
        return {"strings": self.base.compress(x, q)["strings"]}

    def decompress(
        self,
        strings: list[list[bytes]],
        size: tuple[int, int],
        q: float,
        side: Tensor | None = None,
    ) -> Tensor:
        return self.refine(self.base.decompress(strings, size, q, side), side, q)


@register("dsin-atn")
class DSINOverATN(DSIN):
    """DSIN's refinement over ``atn`` (module docstring). The extra config is atn's own."""

    def __init__(
        self,
        attn_dim: int = 128,
        heads: int = 4,
        band: int = 2,
        window: int = 16,
        w_noise: float = 0.03,
        side_dropout: float = 0.1,
        **kw,
    ):
        atn = {"attn_dim": attn_dim, "heads": heads, "band": band, "window": window}
        super().__init__(**atn, w_noise=w_noise, side_dropout=side_dropout, **kw)

    def make_base(self, N: int, M: int, levels: int, **base_config) -> CodecModel:
        return ATN(N=N, M=M, levels=levels, **base_config)
