"""``ndic``: Neural Distributed Image Compression (Mital et al., DCC 2022), mean-scale hyperprior.

    encoder side (transmitted)            decoder side (never quantised, never sent)
    x ──► E_x ──► v_x ──► hyperprior(q) ──► v̂_x ─┐
                          (the bitstream)          ├─ cat ──► D_x ─────────────────────────► x̂
    y ──► E_w ──► w (+ noise in training) ─────────┤
    y ──► E_y ──► v_y ────────────────────────────┴─ cat ──► D_y ──► ŷ (training loss only)

w is the "common information" that both decoders read; D_x and D_y each have four stages
(ConvT5x5/2 + IGDN, x3, then ConvT5x5/2). ATN (``atn.py``) is this model plus cross-attention
after D_x's stages 1..3. Without a side image the decoder uses y = 0, the same path that
side-information dropout trains, so decoding never needs y to succeed.

Loss terms (``models/loss.py``): likelihoods of v̂_x (R_x); ŷ for α·D_y; entropy bottlenecks
on v_y and w provide α·R_y and β·R_w (they only regularise; nothing of them is coded).
"""

from __future__ import annotations

import torch
from compressai.entropy_models import EntropyBottleneck
from torch import Tensor, nn

from wzcodec.models.base import CodecModel
from wzcodec.models.latent import VariableRateHyperprior
from wzcodec.models.layers import analysis, run_bf16, synthesis_stages
from wzcodec.models.registry import register


@register("ndic")
class NDIC(CodecModel):
    uses_side = True

    def __init__(
        self,
        N: int = 128,
        M: int = 192,
        levels: int = 6,
        w_noise: float = 0.03,
        side_dropout: float = 0.1,
    ):
        super().__init__()
        self.N, self.M, self.levels = N, M, levels
        self.w_noise, self.side_dropout = w_noise, side_dropout
        self.bf16 = False
        self.coarse_latent: dict | None = None  # training only: see ``coarsen``
        self.decode_y = True  # training computes ŷ, R_y and R_w (train() turns it off at α = β = 0)
        self.e_x, self.e_y, self.e_w = analysis(N, M), analysis(N, M), analysis(N, M)
        self.latent = self.make_latent()
        self.d_x = synthesis_stages(self.d_x_inputs(), N)
        self.d_y = synthesis_stages([2 * M, N, N, N], N)
        self.eb_y, self.eb_w = EntropyBottleneck(M), EntropyBottleneck(M)  # R_y, R_w (loss only)
        self.cams: nn.ModuleList | None = None

    # -- what subclasses change ----------------------------------------------------------------
    def make_latent(self) -> nn.Module:
        return VariableRateHyperprior(self.M, self.N, self.levels)

    def d_x_inputs(self) -> list[int]:
        return [2 * self.M, self.N, self.N, self.N]

    # -- decoder side --------------------------------------------------------------------------
    def side(self, y: Tensor | None, like: Tensor, need_y_hat: bool = False) -> dict:
        """Everything the decoder derives from y: w, v_y, D_y's features after stages 1..3, and
        (training) ŷ. ``y=None`` means no side image: y = 0."""
        if y is None:
            y = torch.zeros_like(like)
        elif self.training and self.side_dropout > 0:
            keep = (torch.rand(y.shape[0], 1, 1, 1, device=y.device) >= self.side_dropout).to(
                y.dtype
            )
            y = y * keep
        w = run_bf16(self.bf16, self.e_w, y)
        if self.training and self.w_noise > 0:
            w = w + torch.randn_like(w) * self.w_noise
        if not (need_y_hat or self.cams is not None):
            return {"w": w}  # NDIC's D_x reads w only: the y branch serves ŷ, for the loss
        v_y = run_bf16(self.bf16, self.e_y, y)
        h = torch.cat([v_y, w], 1)
        feats = []
        for stage in self.d_y[:3]:
            h = run_bf16(self.bf16, stage, h, keep=True)
            feats.append(h)
        out = {"w": w, "v_y": v_y, "feats": feats}
        if need_y_hat:
            out["y_hat"] = run_bf16(self.bf16, self.d_y[3], h)
        return out

    def decode_x(self, v_hat: Tensor, side: dict) -> Tensor:
        h = torch.cat([v_hat, side["w"]], 1)
        for i, stage in enumerate(self.d_x):
            h = run_bf16(self.bf16, stage, h, keep=i < 3)
            if self.cams is not None and i < 3:
                aligned = run_bf16(self.bf16, self.cams[i], h, side["feats"][i], keep=True)
                h = torch.cat([h, aligned], 1)
        return h

    # -- the common calling convention ----------------------------------------------------------
    def forward(self, x: Tensor, y: Tensor | None = None, q: Tensor | float = 1.0) -> dict:
        v = run_bf16(self.bf16 and self.training, self.e_x, x)  # encoder: fp32 at inference
        lat = self.latent(v, q)
        side = self.side(y, x, need_y_hat=self.training and self.decode_y)
        v_hat = self.coarsen(v, lat["y_hat"], q) if self.training else lat["y_hat"]
        out = {"x_hat": self.decode_x(v_hat, side), "likelihoods": lat["likelihoods"]}
        if self.training and self.decode_y:
            out["y_hat"] = side["y_hat"]
            out["likelihoods_y"] = {"v_y": self.eb_y(side["v_y"].float())[1]}
            out["likelihoods_w"] = {"w": self.eb_w(side["w"].float())[1]}
        return out

    def coarsen(self, v: Tensor, v_hat: Tensor, q: Tensor | float) -> Tensor:
        """Training config ``coarse_latent: {p, max_factor}``: with probability p per sample,
        D_x gets v quantised f times coarser than level q's step (f uniform in [1, max_factor])
        instead of v̂_x, as if x had been sent at a lower rate, where w is worth more.
        Gradients pass straight through to v̂_x."""
        spec = self.coarse_latent
        if not spec or float(spec["p"]) <= 0:
            return v_hat
        b = v_hat.shape[0]
        draw = torch.rand(b, 2, 1, 1, device=v_hat.device)
        f = 1 + draw[:, 1:] * (float(spec["max_factor"]) - 1)
        f = torch.where(draw[:, :1] < float(spec["p"]), f, torch.ones_like(f))
        g = self.latent.gain(q) / f
        coarse = torch.round(v.float() * g) / g
        return v_hat + torch.where(f > 1, coarse - v_hat, torch.zeros_like(v_hat)).detach()

    def compress(self, x: Tensor, q: float) -> dict:
        strings, _ = self.latent.compress(self.e_x(x), q)
        return {"strings": strings}

    def decompress(
        self,
        strings: list[list[bytes]],
        size: tuple[int, int],
        q: float,
        side: Tensor | dict | None = None,
    ) -> Tensor:
        v_hat = self.latent.decompress(strings, (size[0] // 16, size[1] // 16), q)
        if not isinstance(side, dict):  # a dict: prepare_side's, computed once for this y
            side = self.side(side, torch.zeros(1, 3, *size, device=v_hat.device))
        return self.decode_x(v_hat, side)

    def cam_inputs(self, x: Tensor, y: Tensor, q: Tensor | float) -> list[tuple[Tensor, Tensor]]:
        """(D_x's features, D_y's features) at each CAM for the pair (x, y), without gradients
        and without side-information dropout (the matching loss of ``train.match_side``)."""
        caught: list[tuple[Tensor, Tensor]] = []
        hooks = [
            cam.register_forward_hook(lambda _m, i, _o: caught.append((i[0], i[1])))
            for cam in self.cams or []
        ]
        was = self.training
        try:
            self.eval()
            with torch.no_grad():
                self(x, y, q)
        finally:
            self.train(was)
            for h in hooks:
                h.remove()
        return caught

    def prepare_side(self, y: Tensor) -> dict:
        """w and D_y's features of y (E_w, E_y, D_y: a third of atn's decode time)."""
        return self.side(y, y)

    # -- warm start ---------------------------------------------------------------------------
    def load_hyperprior(self, state: dict[str, Tensor], side_scale: float = 0.1) -> set[str]:
        """Initialise from a trained ``hyperprior``: E_x, E_y, E_w <- g_a; the latent codec as
        is; D_x and D_y <- g_s, where the extra input channels (w, aligned y features) keep
        their random init scaled by ``side_scale``. Returns the names initialised from it
        (whole or, for the widened first convolutions, in part)."""
        src = {}
        for k, v in state.items():
            if k.startswith("g_a."):
                for enc in ("e_x", "e_y", "e_w"):
                    src[enc + k[3:]] = v
            elif k.startswith("latent."):
                src[k] = v
            elif k.startswith("g_s."):
                i, rest = k[4:].split(".", 1)
                stage, part = divmod(int(i), 2)
                name = f"{stage}.{rest}" if stage == 3 else f"{stage}.{part}.{rest}"
                src["d_x." + name] = src["d_y." + name] = v
        copied = set()
        with torch.no_grad():
            own = dict(self.named_parameters())
            for name, p in own.items():
                v = src.get(name)
                if v is None:
                    continue
                v = v.to(p.dtype)
                if v.shape == p.shape:
                    p.copy_(v)
                    copied.add(name)
                elif p.dim() == 4 and v.shape[1:] == p.shape[1:] and v.shape[0] < p.shape[0]:
                    n = v.shape[0]  # ConvTranspose weight: (in, out, k, k); extra inputs follow
                    p[n:].mul_(side_scale)
                    p[:n].copy_(v)
                    copied.add(name)  # mostly trained: it learns at the warm rate
        return copied
