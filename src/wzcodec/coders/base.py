"""``BaseCoder``: a standard codec's file behind ``Codec``, with an optional receiver.

    encode: RGB uint8 ─► the base codec (AVIF, HEIC, ...; Pillow) ─► its file, byte for byte
    decode: the file ─► the base decoder ─► x̂ ─┬─────────────────────────────► x̂ (no y)
                       side images y ─────────┴─► receiver(x̂, y, bpp) ─► x̃

The encoder and a decode without a receiver import no PyTorch: a camera-class sender needs
none. The receiver (``receiver/gated.py``: alignment, fusion net, rate gate) is built on
first use. Any receiver refines any file of its base codec, so the ``.wz`` header's weights id
is informational here, and a camera's plain file decodes as it is (``accepts``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np

from wzcodec import classical
from wzcodec.coders import Coder, set_module_bf16
from wzcodec.errors import BitstreamError


class BaseCoder(Coder):
    """``codec``: a ``classical.CODECS`` name; ``build``: makes the receiver (None: none);
    ``uses_side``: the receiver looks at y (False: a post-filter, the ``-pf`` ablations)."""

    max_sides = None  # the receiver takes any number of side images

    def __init__(self, codec: str, build: Callable[[], Any] | None = None, uses_side: bool = True):
        self.codec, self._build, self._model = codec, build, None
        self.family = classical.family(codec)
        self.levels = classical.MAX_QUALITY[codec]
        self.qualities = [float(q) for q in classical.CODECS[codec][2]]
        self.uses_side = uses_side and build is not None
        self.needs_header = build is not None  # a standard codec alone: its file is whole
        self._bf16 = False

    @property
    def model(self) -> Any:
        if self._model is None and self._build is not None:
            from wzcodec.coders.latent import channels_last_transforms

            self._model = self._build().eval()
            channels_last_transforms(self._model)  # the net's convolutions: ~2x faster on CPU
            self.set_bf16(self._bf16)
        return self._model

    def set_bf16(self, on: bool) -> None:
        self._bf16 = on
        if self._model is not None:
            set_module_bf16(self._model, on)

    def encode(self, rgb: np.ndarray, quality: float) -> list[bytes]:
        return [classical.encode(self.codec, rgb, round(quality))]

    def base_decode(self, data: bytes) -> np.ndarray:
        try:
            with contextlib.redirect_stderr(None):
                return np.ascontiguousarray(classical.decode(data))
        except Exception as e:  # Pillow and its plugins raise many kinds on a bad file
            raise BitstreamError(
                f"not a decodable {self.family.upper()} file ({type(e).__name__})"
            ) from None

    def base_image(self, strings: list[bytes]) -> np.ndarray | None:
        return self.base_decode(strings[0]) if self._build is not None else None

    def plain(self, strings: list[bytes]) -> bytes:
        return strings[0]

    def decode(self, strings: list[bytes], size: tuple[int, int], quality: float, side):
        data = strings[0]
        x_hat = self.base_decode(data)
        if x_hat.shape[:2] != tuple(size):
            raise BitstreamError("the base file's image size differs from the header's")
        if self._build is None or (self.uses_side and side is None):
            return x_hat  # the base decoder's own pixels: no PyTorch needed
        import torch

        from wzcodec.images import to_tensor, to_uint8
        from wzcodec.threads import fixed_threads

        bpp = 8 * len(data) / (size[0] * size[1])
        feats = side.features() if side is not None else None
        with torch.inference_mode(), fixed_threads():
            x = to_tensor(x_hat)[None]
            return to_uint8(self.model.refine(x, feats, bpp=bpp))

    def prepare_side(self, ys: list) -> list:
        return list(ys)

    def accepts(self, data: bytes) -> bool:
        return classical.sniff(data) == self.family
