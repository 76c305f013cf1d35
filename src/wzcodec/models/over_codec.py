"""``avif-si``, ``heic-si``: a standard codec's bits, refined at the receiver with the side
image y (design, training and numbers: ``docs/over-codec.md``).

    x ──► base encoder (AVIF, HEIC, ...; never sees y) ──► the base file, byte for byte ──► bits
    bits ──► base decoder ──► x̂ ─────────────────────────────────────────────┬──► + ──► x̃
    y ──► match every 20x24 patch of x̂ in y (Pearson, Gaussian prior on the  │    ▲
          displacement) ──► y_syn ───────────────────────────────────────────┴─► R ┘

R is DSIN's fusion net (``wzcodec.models.dsin.FusionNet``: nine 3x3 convolutions of 32
channels, dilations 1..128, LeakyReLU) on cat(x̂, y_syn); its residual is added to x̂. Training
starts from the shipped ``dsin`` fusion weights (``init: dsin`` in the config; they were trained
on hyperprior decodes) and adapts them to AVIF and HEIC artifacts. It is told neither the
quality nor the base codec: the same weights refine any AVIF or HEIC file (a camera's, at any
setting). ``scale`` is the matching resolution: 2 (half) in training, 1 in the shipped
weights (the config's ``serve``).

How much of R's residual is added depends on the base file's rate (bits per pixel, known for
any file, so no quality needs to be told): α(bpp), one curve per base codec fitted after
training on train pairs, for the largest mean PSNR gain. Near-lossless files get α near 0:
there a conv net's residual costs more than y can give.

``align`` picks how y is aligned to x̂: ``match`` (the shipped weights: DSIN's patch matching
above), ``cam`` (ATN's band cross-attention, ``CamAlign``: learned features of x̂ and y, 8x8
tokens, keys within ±2 token rows; the attention mixes y's pixels into y_cam) or ``both``
(R sees x̂, y_syn and y_cam). ``cam`` and ``both`` are the alignment ablation
(docs/over-codec.md).

Without a side image, decoding returns x̂ exactly: the base decoder's own pixels. With
``use_side: false`` (the ablation ``<base>-pf``) R sees x̂ in place of y_syn: a plain
post-filter trained on the same data from the same start, which separates y's gain from
artifact removal.
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
from wzcodec.models.dsin import FusionNet, match_patches
from wzcodec.models.layers import BandCAM, run_bf16
from wzcodec.models.registry import register
from wzcodec.receiver.gated import GATE_BASES, GATE_KNOTS, as_sides, flow_refine, gate_value
from wzcodec.receiver.receiver import FlowReceiver

__all__ = ["GATE_BASES", "GATE_KNOTS", "OverCodec"]


ALIGNS = ("match", "cam", "both", "flow")


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


class OverCodec(CodecModel):
    """A base codec's bitstream with a learned receiver (module docstring). Subclasses name
    the base; the codec shell codes unpadded images (``factor`` 1) and integer qualities."""

    base_codec: ClassVar[str] = ""
    weights_name: ClassVar[str] = "refiner-si"  # one refiner serves every base (codec-blind)
    default_quality: ClassVar[float] = 30.0
    factor = 1
    entropy_coded = False  # the one string is the base file: no rANS tail, no likelihoods
    default_config: ClassVar[dict] = {
        "channels": 32,
        "use_side": True,
        "patch": [20, 24],
        "search_v": 16,
        "sigma": 150.0,
        "scale": 2,
        "align": "match",
    }
    uses_side = True
    max_sides = None  # any number: each patch is matched in every side image, the best kept

    def __init__(
        self,
        channels: int = 32,
        use_side: bool = True,
        patch=(20, 24),
        search_v: int = 16,
        sigma: float = 150.0,
        scale: int = 2,
        align: str = "match",
        width: int = 16,
        depth: int = 4,
        blocks: int = 1,
        middle: int = 2,
        preset: str = "medium",
        attention: int = 0,
    ):
        super().__init__()
        if align not in ALIGNS:
            raise ValueError(f"align: {align!r} is not one of {', '.join(ALIGNS)}")
        self.use_side, self.patch, self.align_mode = use_side, tuple(patch), align
        self.search_v, self.sigma, self.scale = search_v, sigma, scale
        self.receiver = self.cam = self.refiner = None
        if align == "flow":  # the flow receiver (receiver/): dense flow and a rate-aware U-Net
            self.receiver = FlowReceiver(width, depth, blocks, middle, preset, use_side, attention)
        else:
            self.cam = CamAlign() if use_side and align != "match" else None
            self.refiner = FusionNet(channels, inputs=9 if use_side and align == "both" else 6)
        for base in GATE_BASES:  # trust in R per rate (``gate``), one curve per base codec
            self.register_buffer(f"gate_{base}", torch.ones(len(GATE_KNOTS)))
        self.bf16 = False

    @property
    def levels(self) -> int:
        return classical.MAX_QUALITY[self.base_codec]

    @property
    def qualities(self) -> list[int]:
        """The default rate points: the classical codec's own sweep (same bytes)."""
        return classical.CODECS[self.base_codec][2]

    # -- the receiver -----------------------------------------------------------------------
    def align(self, x_hat: Tensor, y: Tensor | list[Tensor]) -> Tensor:
        """y aligned to x̂ for R: y_syn (each patch of x̂ replaced by its best match in y,
        ``match_patches``), y_cam (``CamAlign``) or both, by ``align``. With several side
        images, y_syn takes each patch from the side image whose match scores highest
        (correlation less the displacement prior); y_cam uses the first."""
        ys = list(y) if isinstance(y, (list, tuple)) else [y]
        parts = []
        if self.align_mode in ("match", "both"):
            with torch.no_grad():
                parts.append(self.match(x_hat, ys))
        if self.cam is not None:
            parts.append(run_bf16(self.bf16, self.cam, x_hat, ys[0]))
        return parts[0] if len(parts) == 1 else torch.cat(parts, 1)

    def match(self, x_hat: Tensor, ys: list[Tensor]) -> Tensor:
        """DSIN's y_syn over one or several side images (the best-scoring match per patch)."""
        kw = {"search_v": self.search_v, "sigma": self.sigma, "scale": self.scale}
        if len(ys) == 1:
            return match_patches(x_hat, ys[0], ys[0], self.patch, **kw)
        best, top = None, None
        for y in ys:
            syn, score = match_patches(x_hat, y, y, self.patch, with_score=True, **kw)
            if best is None:
                best, top = syn, score
            else:
                better = score > top  # ties keep the earlier side image
                best = torch.where(better, syn, best)
                top = torch.where(better, score, top)
        return best

    def gate(self, bpp: float | None, base: str | None = None) -> float:
        """α(bpp): how much of R's residual to add at the base file's rate, linear in log2 bpp
        between ``GATE_KNOTS`` (flat beyond). Fitted after training (``training.refiner.
        calibrate``: the largest mean PSNR gain on train pairs); 1 before, and in training."""
        return gate_value(getattr(self, f"gate_{base or self.base_codec}").tolist(), bpp)

    def refine(
        self,
        x_hat: Tensor,
        y: Tensor | list[Tensor] | None,
        bpp: float | None = None,
        gated: bool = True,
    ) -> Tensor:
        """x̃ = x̂ + α(bpp)·R(x̂, y_syn); x̂ itself without y. ``y``: one side image or a list.
        ``gated`` False: α = 1 (fitting the gate). The flow receiver is told ``bpp`` (its rate
        input; 0.25 when not known)."""
        alpha = self.gate(bpp) if gated else 1.0
        if self.receiver is not None:  # the flow receiver: as receiver/gated.py decodes
            return flow_refine(self.receiver, alpha, x_hat, as_sides(y), bpp)
        if isinstance(y, (list, tuple)) and not y:
            y = None
        if alpha == 0.0 or (self.use_side and y is None):
            return x_hat  # before the matching: a gated-off file costs only its base decode
        y_syn = self.align(x_hat, y) if self.use_side else x_hat
        return x_hat + alpha * run_bf16(self.bf16, self.refiner, x_hat, y_syn)

    def forward(self, x_hat: Tensor, y: Tensor | None = None, q=None) -> dict:
        """Training: ``x_hat`` is a base decode (the base codec is not differentiable)."""
        return {"x_hat": self.refine(x_hat, y)}

    # -- the codec shell's calls ------------------------------------------------------------
    def compress(self, x: Tensor, q: float) -> dict:
        img = x[0].mul(255).round().byte().permute(1, 2, 0).numpy()  # exact: x came from uint8
        return {"strings": [[classical.encode(self.base_codec, img, round(q))]]}

    def decode_base(self, data: bytes) -> Tensor:
        return to_tensor(np.ascontiguousarray(classical.decode(data)))[None]

    def decompress(
        self, strings, size, q: float, side: Tensor | list[Tensor] | None = None
    ) -> Tensor:
        x_hat = self.decode_base(strings[0][0])
        if tuple(x_hat.shape[-2:]) != tuple(size):
            raise ValueError("the base file's image size differs from the header's")
        return self.refine(x_hat, side, bpp=8 * len(strings[0][0]) / (size[0] * size[1]))

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
