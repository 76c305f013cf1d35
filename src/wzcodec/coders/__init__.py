"""The two kinds of coder behind ``wzcodec.Codec``, chosen by ``load()`` from the catalog:

    LatentCoder (latent.py): an end-to-end learned model; padding to its factor, fractional
        qualities, rANS strings; imports PyTorch.
    BaseCoder (base.py): a standard codec's file (AVIF, HEIC, ...), integer qualities, no
        padding, a camera's plain file accepted; optionally a receiver net that refines the
        decode with the side images, built on first use. Its encoder imports no PyTorch.

``Codec`` asks a coder only what ``Coder`` declares, never what kind it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def set_module_bf16(model: Any, on: bool) -> None:
    """Switch bf16 autocast in every submodule of ``model`` that has the switch."""
    for m in model.modules():
        if hasattr(m, "bf16"):
            m.bf16 = on


class PreparedSide:
    """One or several side images prepared for one codec's decoder (``Codec.prepare_side``).
    ``ys``: the padded images, as many as the model uses (``max_sides``); ``given``: how many
    the caller gave."""

    def __init__(self, codec: Any, ys: list, size: tuple[int, int], given: int):
        self.codec, self.ys, self.size = codec, ys, (int(size[0]), int(size[1]))
        self.given = given
        self._features: tuple[bool, object] | None = None

    @property
    def y(self) -> Any:
        """The first side image (the one a single-side model uses)."""
        return self.ys[0]

    def features(self) -> object:
        """What the coder's ``decode`` takes, computed once (again if ``bf16`` changes)."""
        bf16 = self.codec.bf16
        if self._features is None or self._features[0] != bf16:
            self._features = (bf16, self.codec.coder.prepare_side(self.ys))
        return self._features[1]


class Coder:
    """What ``Codec`` needs of a coder (the defaults are an end-to-end model's)."""

    levels: int = 6  # qualities run 1..levels
    qualities: list[float]  # the default rate points (``wz eval`` sweeps these)
    factor: int = 1  # sides are padded to multiples of this
    max_sides: int | None = 1  # side images used at once (None: any number)
    uses_side: bool = True
    fixed_size: tuple[int, int] | None = None  # the one input size (atn-paper), else None
    search_step: float = 1.0  # the quality grid of the rate search
    integer_quality: bool = True
    trust_weights_id: bool = False  # a file decodes only with the weights that coded it
    needs_header: bool = True  # False: the plain file alone decodes (a standard codec alone)

    @property
    def model(self) -> Any:
        """The torch module behind the coder (built on first use), or None."""
        return None

    def set_bf16(self, on: bool) -> None:
        """Decoder-side transforms in bf16 or not (a coder without a net ignores it)."""

    def encode(self, rgb: np.ndarray, quality: float) -> list[bytes]:
        raise NotImplementedError

    def decode(self, strings: list[bytes], size: tuple[int, int], quality: float, side) -> Any:
        """HxWx3 uint8 from the strings; ``side``: a ``PreparedSide`` or None."""
        raise NotImplementedError

    def prepare_side(self, ys: list) -> Any:
        """The side features ``decode`` takes (from padded tensors)."""
        raise NotImplementedError

    def base_image(self, strings: list[bytes]) -> np.ndarray | None:
        """The standard codec's own decode under a receiver, or None (no receiver)."""
        return None

    def plain(self, strings: list[bytes]) -> bytes | None:
        """The standard codec's own file (what a camera writes), or None (none inside)."""
        return None

    def base_decode(self, data: bytes) -> np.ndarray:
        """A plain file's pixels (coders that ``accept`` plain files)."""
        raise NotImplementedError

    def reconstruct(self, rgb: np.ndarray, side: np.ndarray | None, quality: float):
        """(HxWx3 uint8, bpp estimated from the likelihoods) of one forward pass without
        entropy coding, or None where there are no likelihoods (a standard codec)."""
        return None

    def accepts(self, data: bytes) -> bool:
        """Whether ``data`` is a plain file this coder decodes without a ``.wz`` header."""
        return False


def coder_for(name: str, model: Any) -> Coder:
    """The coder of an in-memory model: a receiver's base coder, or a latent coder."""
    from wzcodec import catalog

    entry = catalog.CATALOG.get(name)
    if entry is not None and entry.kind == "receiver":
        from wzcodec.coders.base import BaseCoder

        return BaseCoder(entry.base, lambda: model, entry.uses_side)
    from wzcodec.coders.latent import LatentCoder

    return LatentCoder(model)
