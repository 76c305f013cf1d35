"""The receiver as ``avif-si`` / ``heic-si`` decode with it: the flow receiver and its rate
gate, with no entropy coder and nothing from CompressAI (a decode imports PyTorch and OpenCV
only).

    x̃ = x̂ + α_base(bpp) · r(x̂, y, bpp)        (x̂ itself without y, or where α = 0)

α is linear in log2 bpp between ``GATE_KNOTS``, one curve per file format, fitted after
training on held-out pairs (``training.refiner.calibrate``). Its state dict has the same keys
as ``models.over_codec.OverCodec`` with ``align: flow`` (the trainer's model), so the shipped
weights load into either.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from wzcodec.receiver.receiver import FlowReceiver

GATE_BASES = ("avif", "heic", "jxl", "webp")
GATE_KNOTS = [k / 2 for k in range(-10, 7)]  # log2 bpp: 1/32 .. 8 bpp, every half octave


def gate_value(values: list[float], bpp: float | None) -> float:
    """α at ``bpp`` from a gate curve's values at ``GATE_KNOTS`` (flat beyond; 1 unknown)."""
    if bpp is None:
        return 1.0
    return float(np.interp(math.log2(max(bpp, 1e-6)), GATE_KNOTS, values))


def as_sides(y) -> list[Tensor] | None:
    """One side image or a list of them as a list (None for none)."""
    if y is None or (isinstance(y, (list, tuple)) and not y):
        return None
    return list(y) if isinstance(y, (list, tuple)) else [y]


def flow_refine(
    receiver: FlowReceiver, alpha: float, x_hat: Tensor, sides: list[Tensor] | None, bpp
) -> Tensor:
    """x̂ + α·r; x̂ itself when α is 0 or a side-information receiver has no side image."""
    if alpha == 0.0 or (receiver.use_side and sides is None):
        return x_hat  # before the alignment: a gated-off file costs only its base decode
    return x_hat + alpha * receiver(x_hat, sides, 0.25 if bpp is None else bpp)


class GatedReceiver(nn.Module):
    """``FlowReceiver`` plus one gate curve per file format; ``base``: the format of the files
    it refines (``avif``, ``heic``). Built from a shipped ``.json`` config (the trainer's
    other keys are ignored)."""

    def __init__(self, base: str, use_side: bool = True, **config):
        super().__init__()
        self.base_codec, self.use_side = base, use_side
        self.receiver = FlowReceiver.from_config(use_side=use_side, **config)
        for b in GATE_BASES:
            self.register_buffer(f"gate_{b}", torch.ones(len(GATE_KNOTS)))
        self.bf16 = False

    def gate(self, bpp: float | None, base: str | None = None) -> float:
        return gate_value(getattr(self, f"gate_{base or self.base_codec}").tolist(), bpp)

    def refine(self, x_hat: Tensor, y, bpp: float | None = None, gated: bool = True) -> Tensor:
        alpha = self.gate(bpp) if gated else 1.0
        return flow_refine(self.receiver, alpha, x_hat, as_sides(y), bpp)


def load_gated(base: str, blob: bytes, config: dict) -> GatedReceiver:
    """A ``GatedReceiver`` from shipped weights' bytes (fp16 tensors become fp32)."""
    from safetensors.torch import load

    model = GatedReceiver(base, **config)
    model.config = dict(config)  # what rebuilds it (as a trainer's model records its own)
    state = {k: v.float() if v.is_floating_point() else v for k, v in load(blob).items()}
    model.load_state_dict(state)
    return model.eval()
