"""Cross-attention along rows, in a window around the flow's position (NAFSSR's SCAM, made
local): what ATN's cross-attention can do once a flow has done the coarse alignment.

    x features (C, h, w) ─ LN ─ 1x1 ─► Q ─┐
    y_w features (C, h, w) ─ LN ─ 1x1 ─► K ─┼─ per pixel: softmax over the 2K+1 keys of its row
    y_w features (C, h, w) ───── 1x1 ─► V ─┘   at columns c-K..c+K (+ a learned bias per shift)
                                            └─► Σ softmax·V ─ 1x1 ─ ×β (zero at start) ─► + x

y_w is y already warped onto x̂ by the flow, so a key at shift s is the pixel s columns from
where the flow put it: the attention can correct the flow along the row, at every pixel shift
of the resolution it runs at (1/4 in the fusion net: ±4K pixels of the image). Cost per pixel
O((2K+1)·C), linear in the pixels. β starts at zero, so the module starts as the identity.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class RowAttention(nn.Module):
    def __init__(self, c: int, window: int = 4):
        super().__init__()
        self.window = window
        self.norm_x, self.norm_y = nn.GroupNorm(1, c), nn.GroupNorm(1, c)
        self.q, self.k, self.v, self.out = (nn.Conv2d(c, c, 1) for _ in range(4))
        self.bias = nn.Parameter(torch.zeros(2 * window + 1))
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))

    def shifted(self, t: Tensor) -> Tensor:
        """(B, C, h, w) -> (B, C, 2K+1, h, w): t at columns c+s for s in -K..K (edge repeated)."""
        K = self.window
        p = F.pad(t, (K, K, 0, 0), mode="replicate")
        w = t.shape[-1]
        return torch.stack([p[..., s : s + w] for s in range(2 * K + 1)], 2)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        q = self.q(self.norm_x(x))
        k = self.shifted(self.k(self.norm_y(y)))
        v = self.shifted(self.v(y))
        scores = (q.unsqueeze(2) * k).sum(1) / q.shape[1] ** 0.5  # (B, 2K+1, h, w)
        attn = torch.softmax(scores + self.bias.view(1, -1, 1, 1), dim=1)
        mixed = (attn.unsqueeze(1) * v).sum(2)
        return x + self.beta * self.out(mixed)
