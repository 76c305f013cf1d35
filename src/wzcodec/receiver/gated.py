"""The receiver as ``avif-si`` / ``heic-si`` (and their ablations) decode and train it: an
aligning, fusing receiver and its rate gate, no entropy coder. The flow receiver (the shipped
one) imports nothing from CompressAI: a decode imports PyTorch and OpenCV only.

    x̃ = x̂ + α_base(bpp) · r(x̂, y, bpp)        (x̂ itself without y, or where α = 0)

``align`` picks r: ``flow`` (``FlowReceiver``, receiver.py) or ``match`` / ``cam`` / ``both``
(``MatchReceiver``, match.py: the earlier receiver). α is linear in log2 bpp between
``GATE_KNOTS``, one curve per file format, fitted after training on held-out pairs
(``training.gate``); 1 before. The model registry's ``avif-si``, ``heic-si``, ``avif-pf`` and
``heic-pf`` are this class with the base codec (and ``use_side``) filled in.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import torch
from torch import Tensor, nn

from wzcodec.receiver.receiver import FlowReceiver

GATE_BASES = ("avif", "heic", "jxl", "webp")
GATE_KNOTS = [k / 2 for k in range(-10, 7)]  # log2 bpp: 1/32 .. 8 bpp, every half octave
MATCH_KEYS = ("refiner.", "cam.")  # a match receiver's keys in weights saved before receiver.


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


def _receiver_class(align: str) -> type[nn.Module]:
    if align == "flow":
        return FlowReceiver
    from wzcodec.receiver.match import MatchReceiver  # DSIN's pieces: imports CompressAI

    return MatchReceiver


def _built(cls: type[nn.Module], config: dict) -> tuple[nn.Module, dict]:
    """``cls`` built from the keys of ``config`` it takes (the rest ignored), and every
    argument it was built with (JSON: tuples as lists)."""
    params = inspect.signature(cls).parameters
    args = {k: p.default for k, p in params.items()}
    args.update({k: config[k] for k in params if k in config})
    return cls(**args), {k: list(v) if isinstance(v, tuple) else v for k, v in args.items()}


class GatedReceiver(nn.Module):
    """A receiver (``align``) plus one gate curve per file format. ``base``: the standard
    codec of the files it refines (``avif``, ``heic``); ``use_side`` False: the no-y
    post-filter ablation. ``config``: the receiver's arguments (others are ignored, so a
    shipped ``.json``'s config loads as it is); ``self.config`` rebuilds it."""

    def __init__(self, base: str, use_side: bool = True, align: str = "match", **config):
        super().__init__()
        self.base_codec, self.use_side = base, use_side
        receiver, args = _built(
            _receiver_class(align), {**config, "use_side": use_side, "align": align}
        )
        self.receiver = receiver
        self.config = {**config, **args, "align": align}
        for b in GATE_BASES:
            self.register_buffer(f"gate_{b}", torch.ones(len(GATE_KNOTS)))
        self.register_load_state_dict_pre_hook(GatedReceiver._old_keys)

    @staticmethod
    def _old_keys(module: nn.Module, state: dict, prefix: str, *args) -> None:
        """Weights saved before the receivers became modules name a match receiver's parts
        ``refiner.*`` / ``cam.*``; they are ``receiver.refiner.*`` / ``receiver.cam.*`` now."""
        for k in [k for k in state if k.startswith(tuple(prefix + m for m in MATCH_KEYS))]:
            state[prefix + "receiver." + k[len(prefix) :]] = state.pop(k)

    def update(self, force: bool = False) -> bool:
        """As a learned model's (which builds its entropy tables): a receiver has none."""
        return False

    def gate(self, bpp: float | None, base: str | None = None) -> float:
        """α(bpp) of ``base``'s file format (default: this receiver's base codec)."""
        return gate_value(self.gate_curve(base or self.base_codec).tolist(), bpp)

    def gate_curve(self, family: str) -> Tensor:
        """The gate's values at ``GATE_KNOTS`` for one file format (a buffer: set it in place)."""
        return self.get_buffer(f"gate_{family}")

    def refine(self, x_hat: Tensor, y, bpp: float | None = None, gated: bool = True) -> Tensor:
        """x̃ = x̂ + α(bpp)·r; x̂ itself when α is 0 or a side-information receiver has no side
        image. ``y``: one side image or a list; ``gated`` False: α = 1 (fitting the gate). The
        receiver is told ``bpp`` (0.25 when not known)."""
        alpha = self.gate(bpp) if gated else 1.0
        sides = as_sides(y)
        if alpha == 0.0 or (self.use_side and sides is None):
            return x_hat  # before the alignment: a gated-off file costs only its base decode
        return x_hat + alpha * self.receiver(x_hat, sides, 0.25 if bpp is None else bpp)

    def forward(self, x_hat: Tensor, y=None, bpp: float | None = None) -> Tensor:
        """``refine``: x̂ is a base decode (the base codec is not differentiable)."""
        return self.refine(x_hat, y, bpp)


def load_gated(base: str, blob: bytes, config: dict, use_side: bool = True) -> GatedReceiver:
    """A ``GatedReceiver`` from shipped weights' bytes (fp16 tensors become fp32)."""
    from safetensors.torch import load

    model = GatedReceiver(base, **{"use_side": use_side, **config})
    state = {k: v.float() if v.is_floating_point() else v for k, v in load(blob).items()}
    model.load_state_dict(state)
    return model.eval()
