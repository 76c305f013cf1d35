"""``avif-si``, ``heic-si`` (and ``jxl-si``, ``webp-si``): a standard codec's bits, refined at
the receiver with the side image y.

    x ──► base encoder (AVIF, HEIC, ...; never sees y) ──► the base file, byte for byte ──► bits
    bits ──► base decoder ──► x̂ ─────────────────────────────────────────────┬──► + ──► x̃
    y ──► match every 20x24 patch of x̂ in y (Pearson, at half resolution,    │    ▲
          two patch grids half a patch apart) ──► y_syn₁, y_syn₂, scores ─────┴─► R ┘

R (``Refiner``) works at half resolution: the inputs are space-to-depth folded (2x2 pixels
into channels), pass seven 3x3 convolutions of 48 channels with dilations 1..16 and
LeakyReLU, and unfold back to a full-resolution residual added to x̂. Its last layer starts at
zero, so an untrained R returns the base decode. It is told neither the quality nor the base
codec: the same weights refine any AVIF or HEIC file (a camera's, at any setting).

Without a side image, decoding returns x̂ exactly: the base decoder's own pixels. With
``use_side: false`` (the ablation ``<base>-pf``) R sees x̂ in place of both y_syn and no match
scores: a plain post-filter trained on the same data, which separates y's gain from artifact
removal.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from wzcodec import classical
from wzcodec.images import to_tensor
from wzcodec.models.base import CodecModel
from wzcodec.models.dsin import match_patches
from wzcodec.models.layers import run_bf16
from wzcodec.models.registry import register


class Refiner(nn.Module):
    """R(x̂, y_syn₁, y_syn₂, s₁, s₂) -> residual, at half resolution (module docstring)."""

    def __init__(self, channels: int = 48, dilations=(1, 2, 4, 8, 16, 1)):
        super().__init__()
        cin = 4 * 9 + 2  # x̂ and two y_syn folded 2x2, and the two match scores (pooled)
        layers: list[nn.Module] = [nn.Conv2d(cin, channels, 3, padding=1), nn.LeakyReLU(0.2)]
        for d in dilations:
            layers += [nn.Conv2d(channels, channels, 3, padding=d, dilation=d), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels, 4 * 3, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x_hat: Tensor, y1: Tensor, y2: Tensor, s1: Tensor, s2: Tensor) -> Tensor:
        H, W = x_hat.shape[-2:]
        pad = (0, W % 2, 0, H % 2)  # odd sides: replicate one column / row, cropped after
        images = F.pad(torch.cat([x_hat - 0.5, y1 - 0.5, y2 - 0.5], 1), pad, mode="replicate")
        scores = F.avg_pool2d(F.pad(torch.cat([s1, s2], 1), pad, mode="replicate"), 2)
        folded = torch.cat([F.pixel_unshuffle(images, 2), scores], 1)
        return F.pixel_shuffle(self.head(self.body(folded)), 2)[..., :H, :W]


class OverCodec(CodecModel):
    """A base codec's bitstream with a learned receiver (module docstring). Subclasses name
    the base; the codec shell codes unpadded images (``factor`` 1) and integer qualities."""

    base_codec: ClassVar[str] = ""
    weights_name: ClassVar[str] = "refiner-si"  # one refiner serves every base (codec-blind)
    default_quality: ClassVar[float] = 30.0
    factor = 1
    entropy_coded = False  # the one string is the base file: no rANS tail, no likelihoods
    default_config: ClassVar[dict] = {
        "channels": 48,
        "use_side": True,
        "patch": [20, 24],
        "search_v": 16,
        "sigma": 150.0,
        "scale": 2,
    }
    uses_side = True

    def __init__(
        self,
        channels: int = 48,
        use_side: bool = True,
        patch=(20, 24),
        search_v: int = 16,
        sigma: float = 150.0,
        scale: int = 2,
    ):
        super().__init__()
        self.config = {
            "channels": channels,
            "use_side": use_side,
            "patch": list(patch),
            "search_v": search_v,
            "sigma": sigma,
            "scale": scale,
        }
        self.use_side, self.patch = use_side, tuple(patch)
        self.search_v, self.sigma, self.scale = search_v, sigma, scale
        self.refiner = Refiner(channels)
        self.bf16 = False

    @property
    def levels(self) -> int:
        return classical.MAX_QUALITY[self.base_codec]

    @property
    def qualities(self) -> list[int]:
        """The default rate points: the classical codec's own sweep (same bytes)."""
        return classical.CODECS[self.base_codec][2]

    # -- the receiver -----------------------------------------------------------------------
    def align(self, x_hat: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """y_syn and match scores for two patch grids, the second offset by half a patch."""
        ph, pw = self.patch
        kw = {"search_v": self.search_v, "sigma": self.sigma, "scale": self.scale}
        y1, s1 = match_patches(x_hat, y, y, self.patch, with_score=True, **kw)
        oy, ox = ph // 2, pw // 2
        pad = (ox, 0, oy, 0)
        xp, yp = F.pad(x_hat, pad, mode="replicate"), F.pad(y, pad, mode="replicate")
        y2, s2 = match_patches(xp, yp, yp, self.patch, with_score=True, **kw)
        return y1, y2[..., oy:, ox:], s1, s2[..., oy:, ox:]

    def refine(self, x_hat: Tensor, y: Tensor | None) -> Tensor:
        """x̃ = x̂ + R(x̂, aligned y); x̂ itself without y."""
        if self.use_side and y is None:
            return x_hat
        if self.use_side:
            with torch.no_grad():
                y1, y2, s1, s2 = self.align(x_hat, y)
        else:
            y1 = y2 = x_hat
            s1 = s2 = torch.zeros_like(x_hat[:, :1])
        return x_hat + run_bf16(self.bf16, self.refiner, x_hat, y1, y2, s1, s2)

    def forward(self, x_hat: Tensor, y: Tensor | None = None, q=None) -> dict:
        """Training: ``x_hat`` is a base decode (the base codec is not differentiable)."""
        return {"x_hat": self.refine(x_hat, y)}

    # -- the codec shell's calls ------------------------------------------------------------
    def compress(self, x: Tensor, q: float) -> dict:
        img = x[0].mul(255).round().byte().permute(1, 2, 0).numpy()  # exact: x came from uint8
        return {"strings": [[classical.encode(self.base_codec, img, round(q))]]}

    def decode_base(self, data: bytes) -> Tensor:
        return to_tensor(np.ascontiguousarray(classical.decode(data)))[None]

    def decompress(self, strings, size, q: float, side: Tensor | None = None) -> Tensor:
        x_hat = self.decode_base(strings[0][0])
        if tuple(x_hat.shape[-2:]) != tuple(size):
            raise ValueError("the base file's image size differs from the header's")
        return self.refine(x_hat, side)

    def accepts(self, data: bytes) -> bool:
        """Whether ``data`` is a plain file of this base codec (a camera's .avif / .heic)."""
        return classical.sniff(data) == self.base_codec

    def max_symbols(self, h: int, w: int) -> int:
        return 0


@register("avif-si")
class AVIFSideRefiner(OverCodec):
    """AVIF (AV1 intra) bits, refined with y at the receiver."""

    base_codec = "avif"


@register("heic-si")
class HEICSideRefiner(OverCodec):
    """HEIC (HEVC intra) bits, refined with y at the receiver."""

    base_codec = "heic"


@register("avif-pf")
class AVIFPostFilter(OverCodec):
    """The ablation of ``avif-si``: the same refiner trained without y (a post-filter)."""

    base_codec = "avif"
    weights_name = "refiner-pf"
    uses_side = False
    default_config: ClassVar[dict] = {**OverCodec.default_config, "use_side": False}


@register("heic-pf")
class HEICPostFilter(OverCodec):
    """The ablation of ``heic-si``: the same refiner trained without y (a post-filter)."""

    base_codec = "heic"
    weights_name = "refiner-pf"
    uses_side = False
    default_config: ClassVar[dict] = {**OverCodec.default_config, "use_side": False}
