"""The flow receiver: refine a base decode x̂ with the side images the receiver holds.

    x̂ (uint8, the base decoder's pixels) ──┬───────────────────────────────────────┬─► + ─► x̃
    y₁ … yₖ ──► align_many (DIS flow, warp, │                                       │   ▲
               confidence; align.py) ──► y_w, conf ──► FusionUNet(x̂, y_w, conf, bpp) ─► α(bpp)·r

A plain module: no entropy coder and nothing the encoder sees. ``bpp`` is the base file's
rate, known for any file (a camera's own included), so no quality is ever told; α(bpp) is the
gate fitted per file format (``gated.py``). With ``use_side`` off
(the no-y post-filter ablation) the net sees y_w := x̂ and a zero confidence.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from wzcodec.receiver.align import CONF_PLANES, Aligned, align_many
from wzcodec.receiver.fusion import FusionUNet


def to_u8(t: Tensor) -> np.ndarray:
    """(3, H, W) in [0, 1] -> HxWx3 uint8 (exact for a tensor made from uint8)."""
    return t.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).contiguous().numpy()


def aligned_tensors(a: Aligned) -> tuple[Tensor, Tensor]:
    """An ``Aligned`` as (1, 3, H, W) tensors y_w and conf."""
    y = torch.from_numpy(np.ascontiguousarray(a.y)).permute(2, 0, 1)[None]
    c = torch.from_numpy(np.ascontiguousarray(a.conf)).permute(2, 0, 1)[None]
    return y, c


class FlowReceiver(nn.Module):
    def __init__(
        self,
        width: int = 16,
        depth: int = 4,
        blocks: int = 1,
        middle: int = 2,
        preset: str = "medium",
        use_side: bool = True,
        attention: int = 0,
    ):
        super().__init__()
        self.preset, self.use_side = preset, use_side
        self.fusion = FusionUNet(width, depth, blocks, middle, attention)
        self.bf16 = False

    def align(self, x_hat: Tensor, sides: list[Tensor] | None) -> tuple[Tensor, Tensor]:
        """y_w and conf for a batch of one x̂ (1, 3, H, W) and its side images (each
        (1, 3, H, W)); without sides (or ``use_side`` off): x̂ and a zero confidence."""
        if not self.use_side or not sides:
            return x_hat, x_hat.new_zeros(x_hat.shape[0], CONF_PLANES, *x_hat.shape[2:])
        a = align_many(to_u8(x_hat[0]), [to_u8(y[0]) for y in sides], self.preset)
        return aligned_tensors(a)

    def residual(self, x_hat: Tensor, y_w: Tensor, conf: Tensor, bpp: Tensor) -> Tensor:
        """r, the fusion net's correction (x̃ = x̂ + α·r); bf16 autocast when ``bf16``."""
        with torch.autocast(x_hat.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.fusion(x_hat, y_w, conf, bpp).float()

    def forward(self, x_hat: Tensor, sides: list[Tensor] | None, bpp: float) -> Tensor:
        """r for one image (B = 1) at rate ``bpp``."""
        y_w, conf = self.align(x_hat, sides)
        y_w = y_w.contiguous(memory_format=torch.channels_last)
        bpp_t = torch.tensor([float(bpp)], dtype=torch.float32)
        return self.residual(x_hat, y_w, conf, bpp_t)
