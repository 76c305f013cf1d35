"""``Codec``, the one API over every model and standard codec: ``encode(image) -> bytes`` and
``decode(bytes, side) -> image``. ``load()`` reads the catalog once and picks the coder it
delegates to (``coders/``); nothing here asks which kind it holds.

    load(name) ─► catalog entry ─► LatentCoder(model)            an end-to-end model (rANS)
                               └─► BaseCoder(codec[, receiver])  a standard codec's file, with
                                                                 a receiver built on first use
    encode:  image ─► RGB uint8 (each lossy conversion said) ─► coder.encode(q) ─► strings
                   ─► Bitstream(header: model, weights id, q, H, W, gray) ─► bytes
    decode:  bytes (or a camera's plain file: ``wrap``) ─► parse + CRC ─► check model name
                   (and, where the bits depend on them, the weights id)
                   ─► coder.decode(strings, q, prepared side images) ─► HxWx3 uint8
    plain(bytes): the standard codec's own file inside; stored_size(bytes): what it costs

The encoder never sees the side image; only ``decode`` takes it. Importing this module, a
standard codec's encode and reading headers import no PyTorch.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wzcodec import catalog
from wzcodec.bitstream import FLAG_GRAY, MAGIC, Bitstream, Header, parse
from wzcodec.coders import Coder, PreparedSide, coder_for
from wzcodec.errors import BitstreamError, ImageError, RateWarning, WzError
from wzcodec.images import MAX_PIXELS, MAX_SIDE, as_rgb, is_gray
from wzcodec.threads import CODING_THREADS, fixed_threads, native_bf16

__all__ = [
    "CODING_THREADS",
    "Codec",
    "PreparedSide",
    "available",
    "fixed_threads",
    "load",
    "native_bf16",
    "read_header",
    "shipped_weights_id",
    "weights_file",
    "weights_id",
]

WEIGHTS_DIR = Path(__file__).parent / "weights"
NO_WEIGHTS = bytes(8)  # the weights id of a standard codec alone


def weights_id(blob: bytes) -> bytes:
    """The 8-byte identity of a weights file written into every bitstream."""
    return hashlib.sha256(blob).digest()[:8]


def shipped_weights_id(name: str) -> bytes | None:
    """The weights id ``load(name)`` gives (with a frozen base, the base's bytes first),
    from the files alone: no model is built, no PyTorch imported. None: nothing shipped."""
    path = weights_file(name)
    if not path.exists():
        return None
    meta = path.with_suffix(".json")
    base = json.loads(meta.read_text()).get("base") if meta.exists() else None
    prefix = (path.parent / base["file"]).read_bytes() if base else b""
    return weights_id(prefix + path.read_bytes())


class Codec:
    """A model (or standard codec) with fixed weights and a quality, behind a byte-level API.

    >>> codec = wzcodec.load("heic-si", quality=30)
    >>> data = codec.encode(image)               # HxWx3 uint8 array, PIL image or path
    >>> x_hat = codec.decode(data, side=y)       # HxWx3 uint8
    >>> x_hat = codec.decode(data, side=[y1, y2])  # several cameras / past frames
    """

    def __init__(
        self,
        name: str,
        coder: Coder,
        wid: bytes,
        quality: float | None = None,
        bf16: bool | None = None,
    ):
        self.name, self.coder, self.weights_id = name, coder, wid
        default = catalog.CATALOG[name].default_quality if name in catalog.CATALOG else 3.0
        self.quality = default if quality is None else quality
        self.bf16 = native_bf16() if bf16 is None else bf16

    def __repr__(self) -> str:
        return f"Codec({self.name!r}, quality={self.quality:g}, weights {self.weights_id.hex()})"

    @property
    def bf16(self) -> bool:
        """Run the decoder-side transforms (synthesis; for side-information models also the
        y branch and attention; a receiver's net) under bf16 autocast. The encoder transform,
        the entropy models and the hyperprior's scale path stay fp32, so the bitstream is the
        same bytes either way and decodes either way; only decoded pixels change (by ~0.02 dB
        PSNR). Default: on where the CPU has native bf16."""
        return self._bf16

    @bf16.setter
    def bf16(self, on: bool) -> None:
        self._bf16 = bool(on)
        self.coder.set_bf16(self._bf16)

    @property
    def model(self) -> Any:
        """The torch module behind the codec (a receiver's is built on first use), or None
        for a standard codec alone."""
        return self.coder.model

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_safetensors(
        cls,
        name: str,
        blob: bytes,
        config: dict,
        quality: float | None = None,
        bf16: bool | None = None,
        base: bytes | None = None,
        base_spec: dict | None = None,
    ) -> Codec:
        """``base``: the frozen weights ``blob`` was trained over and leaves out (``dsin``'s
        hyperprior, ``ndic``'s atn) with the ``.json``'s ``base`` entry that says where they
        go (``with_base``); they take part in the weights id."""
        from wzcodec.coders.latent import build_model

        model = build_model(name, blob, config, base, base_spec)
        return cls(name, coder_for(name, model), weights_id((base or b"") + blob), quality, bf16)

    @classmethod
    def from_model(cls, model: Any, quality: float | None = None, bf16: bool | None = None):
        """Wrap an in-memory model (for example fresh from training); builds its CDF tables."""
        from safetensors.torch import save as st_save

        model.update(force=True)
        blob = st_save({k: v.contiguous() for k, v in model.state_dict().items()})
        name = model.model_name
        return cls(name, coder_for(name, model), weights_id(blob), quality, bf16)

    @property
    def levels(self) -> int:
        return self.coder.levels

    @property
    def qualities(self) -> list[float]:
        """The default rate points (``wz eval`` sweeps these)."""
        return list(self.coder.qualities)

    @property
    def max_sides(self) -> int | None:
        """How many side images this model uses at once (None: any number)."""
        return self.coder.max_sides if self.coder.uses_side else 1

    @property
    def uses_side(self) -> bool:
        """Whether the decoder looks at side images at all."""
        return self.coder.uses_side

    def _quality(self, quality: float | None) -> float:
        q = float(self.quality if quality is None else quality)
        if not 1 <= q <= self.levels:
            raise WzError(f"quality must be between 1 and {self.levels}, got {q:g}")
        if self.coder.integer_quality:  # a standard codec's quality setting: an integer
            return float(round(q))
        return round(q * 256) / 256  # what the header can carry

    # -- the API ------------------------------------------------------------------------------
    def encode(
        self,
        image,
        quality: float | None = None,
        bpp: float | None = None,
        or_smallest: bool = False,
    ) -> bytes:
        """Compress one image (never looks at any side image). ``bpp``: instead of a quality,
        the file size to aim for, in bits per pixel of the whole file: the highest quality
        whose file is no larger (bisection over the quality grid, about log2 of its size
        encodes: 7 for a standard codec, 8 for a learned model). A target below the smallest
        file raises ``WzError`` naming the smallest reachable rate; with ``or_smallest`` the
        smallest file is returned instead, with a ``RateWarning``."""
        if bpp is not None:
            if quality is not None:
                raise WzError("give a quality or a bpp target, not both")
            return self._encode_to_bpp(image, bpp, or_smallest)
        return self._encode(self._check_size(as_rgb(image)), self._quality(quality))

    def _encode(self, rgb: np.ndarray, q: float) -> bytes:
        h, w = rgb.shape[:2]
        strings = self.coder.encode(rgb, q)
        header = Header(self.name, self.weights_id, q, h, w, FLAG_GRAY if is_gray(rgb) else 0)
        return Bitstream(header, strings).to_bytes()

    def _encode_to_bpp(self, image, bpp: float, or_smallest: bool = False) -> bytes:
        if not (isinstance(bpp, (int, float)) and np.isfinite(bpp) and bpp > 0):
            raise WzError(f"a bpp target must be a number above 0, got {bpp}")
        rgb = self._check_size(as_rgb(image))
        budget = bpp * rgb.shape[0] * rgb.shape[1] / 8
        step = self.coder.search_step  # the quality grid searched
        lo, hi, best = 0, round((self.levels - 1) / step), None
        smallest = None
        while lo <= hi:  # the largest grid quality whose file fits (sizes grow with quality)
            mid = (lo + hi) // 2
            data = self._encode(rgb, self._quality(1 + mid * step))
            if len(data) <= budget:
                best, lo = data, mid + 1
            else:
                hi = mid - 1
                if mid == 0:
                    smallest = data
        if best is None:
            data = smallest or self._encode(rgb, 1.0)
            rate = len(data) * 8 / (rgb.shape[0] * rgb.shape[1])
            message = (
                f"{self.name} cannot reach {bpp:g} bpp on this image: its smallest file is "
                f"{rate:.4f} bpp (quality 1)"
            )
            if not or_smallest:
                raise WzError(message)
            warnings.warn(message + "; wrote that", RateWarning, stacklevel=2)
            return data
        return best

    def decode(self, data: bytes, side=None) -> np.ndarray:
        """Rebuild the image; ``side`` (same size as the coded image) is used if the model can.
        ``side`` may be a list of images (another camera, the previous frame, ...): receivers
        over a standard codec use them all (each pixel from the side image it trusts most);
        the end-to-end models use the first (``max_sides``). A receiver over a standard codec
        (``avif-si``) also takes that codec's plain file (a camera's ``.avif``): it needs no
        header, since its receiver is told the file's rate, not a quality."""
        data = self.wrap(data)
        bs = self.check(data)
        h, w = bs.header.height, bs.header.width
        if isinstance(side, (list, tuple)) and not side:
            side = None
        if side is not None:
            if not isinstance(side, PreparedSide):
                side = self.prepare_side(side)
            if side.codec is not self:
                raise WzError("the side image was prepared by another codec")
            if side.size != (h, w):
                raise ImageError(
                    f"side image is {side.size[1]}x{side.size[0]} but the coded image is {w}x{h}"
                )
            if not self.uses_side:
                side = None
        img = self.coder.decode(bs.strings, (h, w), bs.header.quality, side)
        if bs.header.gray:
            img = np.repeat(
                img.astype(np.float32).mean(2, keepdims=True).round().astype(np.uint8), 3, axis=2
            )
        return img

    def base_decode(self, data: bytes) -> np.ndarray | None:
        """The standard codec's own decode of a receiver's file (what the receiver starts
        from), or None where nothing refines a decode (an end-to-end model, a standard codec
        alone)."""
        bs = self.check(self.wrap(data))
        return self.coder.base_image(bs.strings)

    def plain(self, data: bytes) -> bytes | None:
        """The standard codec's own file inside ``data`` (what a camera writes: ``wz encode
        -o x.heic``), or None for an end-to-end model's file."""
        return self.coder.plain(self.check(self.wrap(data)).strings)

    def stored_size(self, data: bytes) -> int:
        """The bytes an image costs with this codec: the plain file for a standard codec alone
        (the ``.wz`` header carries nothing its decoder needs), else the ``.wz`` file. Every
        rate in ``wz eval`` is this."""
        return len(data) if self.coder.needs_header else len(self.plain(data))

    def wrap(self, data: bytes) -> bytes:
        """A plain file of this codec's standard codec (a camera's ``.avif``) as this codec's
        bitstream (its quality unknown, written as 1); any other data unchanged."""
        if bytes(data[:3]) == MAGIC or not self.coder.accepts(data):
            return data
        img = self.coder.base_decode(data)
        h, w = img.shape[:2]
        if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE and h * w <= MAX_PIXELS):
            raise BitstreamError(f"{w}x{h} base image out of bounds")
        flags = FLAG_GRAY if is_gray(img) else 0
        header = Header(self.name, self.weights_id, 1.0, h, w, flags)
        return Bitstream(header, [bytes(data)]).to_bytes()

    def prepare_side(self, side) -> PreparedSide:
        """Prepare a side image once for several ``decode`` calls against it (the images of
        several cameras, or several qualities, decoded with one reference): ``decode(data,
        side=prepared)`` gives the same pixels as ``decode(data, side=image)`` and skips the
        work that depends on y alone (for ``atn`` E_w, E_y and D_y, about a third of a decode).
        Computed on first use, again only if ``bf16`` changes."""
        from wzcodec.images import pad_to, to_tensor

        images = list(side) if isinstance(side, (list, tuple)) else [side]
        if not images:
            raise ImageError("no side image given")
        rgbs = [as_rgb(im) for im in images]
        for rgb in rgbs[1:]:
            if rgb.shape[:2] != rgbs[0].shape[:2]:
                raise ImageError(
                    f"side images differ in size: {rgbs[0].shape[1]}x{rgbs[0].shape[0]} and "
                    f"{rgb.shape[1]}x{rgb.shape[0]}"
                )
        most = self.coder.max_sides
        ys = [pad_to(to_tensor(rgb)[None], self.coder.factor) for rgb in rgbs[:most]]
        return PreparedSide(self, ys, rgbs[0].shape[:2], len(images))

    def _check_size(self, rgb: np.ndarray) -> np.ndarray:
        fixed = self.coder.fixed_size
        if fixed is not None and rgb.shape[:2] != tuple(fixed):
            raise ImageError(
                f"{self.name} codes {fixed[1]}x{fixed[0]} images only (the paper protocol), "
                f"got {rgb.shape[1]}x{rgb.shape[0]}; use atn for any size"
            )
        return rgb

    def check(self, data: bytes) -> Bitstream:
        """Parse ``data`` and verify it was made by this model and, for an entropy-coded
        model, these weights (its bits mean nothing to other weights). A file of a receiver
        over a standard codec (``avif-si``) is that codec's bytes: any receiver refines it,
        so its weights id only records which receiver the sender shipped, and a newer
        receiver decodes every file an older release wrote."""
        bs = parse(data)
        if bs.header.model != self.name:
            raise BitstreamError(
                f"bitstream was made by model {bs.header.model!r}, not {self.name!r}"
            )
        if self.coder.trust_weights_id and bs.header.weights_id != self.weights_id:
            raise BitstreamError(
                f"weights mismatch: bitstream needs weights {bs.header.weights_id.hex()}, "
                f"loaded {self.weights_id.hex()}"
            )
        return bs

    def reconstruct(
        self, image, side=None, quality: float | None = None
    ) -> tuple[np.ndarray, float]:
        """Eval-mode forward pass (no entropy coding): (reconstruction, bpp estimated from
        the likelihoods). ``decode(encode(x))`` equals this reconstruction. A standard codec's
        coder has no likelihoods: the real file's bits."""
        q = self._quality(quality)
        rgb = self._check_size(as_rgb(image))
        if isinstance(side, (list, tuple)):
            side = as_rgb(side[0]) if side else None  # the forward takes one side image
        elif side is not None:
            side = as_rgb(side)
        estimate = self.coder.reconstruct(rgb, side, q)
        if estimate is not None:
            return estimate
        data = self.encode(rgb, q)  # no likelihoods: the real file's bits
        h, w = rgb.shape[:2]
        return self.decode(data, side=side), len(data) * 8 / (h * w)


def weights_file(name: str) -> Path:
    """The shipped weights of model ``name`` (receivers over a standard codec share theirs)."""
    return WEIGHTS_DIR / f"{catalog.entry(name).weights_name}.safetensors"


def available() -> list[str]:
    """Model names that have shipped weights (the standard codecs load too: ``catalog``)."""
    return sorted(
        name
        for name, e in catalog.CATALOG.items()
        if e.kind != "classical" and weights_file(name).exists()
    )


def load(
    name: str = catalog.DEFAULT_MODEL,
    quality: float | None = None,
    weights: str | Path | None = None,
    bf16: bool | None = None,
) -> Codec:
    """Load a codec with shipped weights (or a ``weights`` .safetensors file with its .json).
    ``quality``: the default of ``encode`` (learned models 1..6, default 3; receivers and
    standard codecs take the standard codec's quality setting, 1..100, default 30). ``bf16``:
    decoder-side transforms in bf16 (default: where the CPU does bf16 natively). Raises
    ``WzError`` for an unknown name, missing weights or weights of another model;
    ``available()`` lists the names that load. A receiver's net is built on its first
    refinement, so its encoder imports no PyTorch; weights given by path are checked at once."""
    entry = catalog.entry(name)
    if entry.kind == "classical":
        if weights:
            raise WzError(f"{name} is a standard codec: it takes no weights")
        from wzcodec.coders.base import BaseCoder

        return _checked(Codec(name, BaseCoder(entry.base, None, False), NO_WEIGHTS, quality, bf16))
    path = Path(weights) if weights else weights_file(name)
    if not path.exists():
        raise WzError(f"no weights for model {name!r} ({path} missing); train one with `wz train`")
    if path.suffix != ".safetensors":
        raise WzError(f"{path}: weights must be a .safetensors file")
    blob = path.read_bytes()
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    config = meta.get("config", {})

    def fitting(make: Callable[[], Any]) -> Any:
        try:
            return make()
        except (RuntimeError, KeyError, ValueError, TypeError) as e:
            raise WzError(
                f"{path}: weights do not fit model {name!r} ({str(e).splitlines()[0]})"
            ) from None

    if entry.kind == "receiver":  # built on first use; the flow receiver needs no CompressAI
        from wzcodec.coders.base import BaseCoder

        def receiver() -> Any:
            from wzcodec.receiver.gated import load_gated  # PyTorch: only for a refinement

            return fitting(lambda: load_gated(entry.base, blob, config, entry.uses_side))

        codec = Codec(name, BaseCoder(entry.base, receiver, entry.uses_side), weights_id(blob),
                      quality, bf16)  # fmt: skip
        if weights:
            _ = codec.model  # a file the user named is checked now, not at the first decode
        return _checked(codec)
    from wzcodec.coders.latent import build_model
    from wzcodec.weights import base_weights

    base = base_weights(path, meta.get("base")) or b""  # the frozen weights it trained over
    model = fitting(lambda: build_model(name, blob, config, base or None, meta.get("base")))
    return _checked(Codec(name, coder_for(name, model), weights_id(base + blob), quality, bf16))


def _checked(codec: Codec) -> Codec:
    codec._quality(codec.quality)
    return codec


def read_header(data: bytes) -> Header:
    """The header of a ``.wz`` file's bytes (no PyTorch needed)."""
    return parse(data).header
