"""The fusion net: a small U-Net of NAFNet blocks that turns (x̂, aligned y, confidence, rate)
into a residual added to x̂.

    inputs (10 planes): x̂ (3), y_w (3), conf (3), rate (1: log2 bpp / 4, the same everywhere)
      │
      conv3x3 ─► w ───────────────────────────────────────────────► + ─ conv3x3 ─ conv3x3 ─► r
                 └ down ─► 2w ─ NAF ─────────────────────► + ─ NAF ─ up ┘          (zero at start)
                           └ down ─► 4w ─ NAF ──► + ─ NAF ─ up ┘
                                     └ down ─► ... 2^depth·w ─ NAF x middle ─ up ┘

    x̃ = x̂ + r

NAF: NAFNet's block (Chen et al. 2022; LayerNorm, 1x1 conv, 3x3 depthwise conv, SimpleGate,
simplified channel attention, 1x1 conv; then a gated 1x1 feed-forward), each half a residual
scaled by a per-channel factor that starts at zero. The last convolution starts at zero too,
so the untrained net returns x̂ exactly: it starts equal to the base decoder and can only
learn from there. ``down``: 2x2 convolution of stride 2; ``up``: 1x1 convolution then
PixelShuffle(2). The rate plane lets one net serve every quality: near lossless it can learn
to leave x̂ alone; the rate gate (``gated.py``) makes sure.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wzcodec.receiver.align import CONF_PLANES
from wzcodec.receiver.row_attention import RowAttention

INPUTS = 3 + 3 + CONF_PLANES + 1


def rate_plane(bpp: Tensor, h: int, w: int) -> Tensor:
    """(B,) bits per pixel -> (B, 1, h, w): log2 bpp / 4 (≈ -1.25 at 1/32 bpp, 0.75 at 8)."""
    return (torch.log2(bpp.clamp_min(1e-3)) / 4).view(-1, 1, 1, 1).expand(-1, 1, h, w)


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of an NCHW tensor (in fp32, whatever the autocast)."""

    def __init__(self, c: int, eps: float = 1e-6):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        # over the last dimension of the NHWC view: one fused kernel (channels_last: no copy)
        t = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return t.permute(0, 3, 1, 2)


def _gate(x: Tensor) -> Tensor:
    a, b = x.chunk(2, dim=1)
    return a * b


class NAFBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.norm1, self.norm2 = LayerNorm2d(c), LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, 2 * c, 1)
        self.dw = nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c)
        self.sca = nn.Conv2d(c, c, 1)
        self.conv3 = nn.Conv2d(c, c, 1)
        self.conv4 = nn.Conv2d(c, 2 * c, 1)
        self.conv5 = nn.Conv2d(c, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        t = _gate(self.dw(self.conv1(self.norm1(x))))
        t = t * self.sca(F.adaptive_avg_pool2d(t, 1))
        x = x + self.beta * self.conv3(t)
        t = self.conv5(_gate(self.conv4(self.norm2(x))))
        return x + self.gamma * t


class FusionUNet(nn.Module):
    """The fusion net (module docstring): ``width`` channels at full resolution, doubled at
    each of the ``depth`` halvings; ``blocks`` NAF blocks per level on each side below full
    resolution, ``middle`` at the bottom. Full resolution holds only plain convolutions (NAF
    blocks there cost more in elementwise work than all the convolutions together).
    ``attention`` K > 0: ``RowAttention`` (window ±K) at 1/4 resolution, its keys and values
    from a small encoder of y_w alone (the ablation of ATN's cross-attention)."""

    def __init__(
        self, width: int = 16, depth: int = 4, blocks: int = 1, middle: int = 2, attention: int = 0
    ):
        super().__init__()
        self.depth = depth
        self.row_attention = None
        if attention:  # RowAttention at 1/4 resolution over features of y_w alone
            self.y_enc = nn.Sequential(
                nn.Conv2d(3, width, 3, padding=1),
                nn.LeakyReLU(0.1),
                nn.Conv2d(width, 2 * width, 2, stride=2),
                nn.LeakyReLU(0.1),
                nn.Conv2d(2 * width, 4 * width, 2, stride=2),
            )
            self.row_attention = RowAttention(4 * width, attention)
        self.intro = nn.Sequential(nn.Conv2d(INPUTS, width, 3, padding=1), nn.LeakyReLU(0.1))
        self.enc, self.down, self.up, self.dec = (nn.ModuleList() for _ in range(4))
        c = width
        for level in range(depth):
            self.enc.append(nn.Sequential(*[NAFBlock(c) for _ in range(blocks * (level > 0))]))
            self.down.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = nn.Sequential(*[NAFBlock(c) for _ in range(middle)])
        for level in reversed(range(depth)):
            self.up.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.dec.append(nn.Sequential(*[NAFBlock(c) for _ in range(blocks * (level > 0))]))
        self.last = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.LeakyReLU(0.1))
        self.out = nn.Conv2d(width, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x_hat: Tensor, y_w: Tensor, conf: Tensor, bpp: Tensor) -> Tensor:
        """The residual r (B, 3, H, W) for x̂ (B, 3, H, W), y_w, conf (B, 3, H, W), bpp (B,).
        Any H, W: the inputs are padded (replicate) to a multiple of 2^depth and r cropped."""
        h, w = x_hat.shape[-2:]
        m = 2**self.depth
        t = torch.cat([x_hat, y_w, conf, rate_plane(bpp, h, w).to(x_hat.dtype)], 1)
        t = F.pad(t, (0, -w % m, 0, -h % m), mode="replicate")
        y_feat = self.y_enc(t[:, 3:6]) if self.row_attention is not None else None
        t = self.intro(t)
        skips = []
        for level, (enc, down) in enumerate(zip(self.enc, self.down, strict=True)):
            t = enc(t)
            if level == 2 and y_feat is not None:
                t = self.row_attention(t, y_feat)
            skips.append(t)
            t = down(t)
        t = self.middle(t)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips), strict=True):
            t = dec(up(t) + skip)
        return self.out(self.last(t))[..., :h, :w]
