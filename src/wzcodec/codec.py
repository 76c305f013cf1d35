"""One codec shell for every model: ``encode(image) -> bytes`` and ``decode(bytes, side) -> image``.

    encode:  image ─► RGB uint8 ─► [0,1] tensor ─► replicate-pad to 64 ─► model.compress(q)
                   ─► strings ─► Bitstream(header: model, weights id, q, H, W) ─► bytes
    decode:  bytes ─► parse + CRC ─► check model name and weights id ─► model.decompress(
                   strings, q, side) ─► crop to H x W ─► uint8 image

The encoder never sees the side image; only ``decode`` takes it. Models follow one calling
convention (see ``models/hyperprior.py``): ``forward(x, y, q)``, ``compress(x, q)``,
``decompress(strings, padded_size, q, side)``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as st_save

from wzcodec.bitstream import FLAG_GRAY, Bitstream, Header, parse
from wzcodec.errors import BitstreamError, ImageError, WzError
from wzcodec.images import (
    MAX_PIXELS,
    MAX_SIDE,
    as_rgb,
    crop_to,
    is_gray,
    pad_to,
    to_tensor,
    to_uint8,
)
from wzcodec.models import MODELS, build
from wzcodec.models.loss import bits_per_pixel
from wzcodec.weights import base_weights, fp32_state, with_base

WEIGHTS_DIR = Path(__file__).parent / "weights"


# oneDNN's convolutions sum in a thread-count-dependent order: with 1 and 2 threads the same
# decoder output differs by ~5e-7, which flips some pixels' rounding, and the hyperprior's
# scales (which pick the entropy tables) could differ between encoder and decoder machines
# set to other thread counts. Coding therefore always runs with this many threads, whatever
# the caller's torch.get_num_threads() (2: twice as fast as 1 on a 2-core machine).
CODING_THREADS = 2


def native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX); elsewhere bf16 is
    emulated and slower than fp32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@contextlib.contextmanager
def fixed_threads(n: int | None = None):
    old = torch.get_num_threads()
    torch.set_num_threads(n or CODING_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def channels_last_transforms(model: torch.nn.Module) -> None:
    """Put the analysis, synthesis, y-branch and fusion convolutions in channels_last (~1.3x
    faster encode and ~1.5x faster decode on CPU). The latent codec's convolutions keep
    their layout, and it makes its input contiguous: its hyper-synthesis computes the scales
    that pick the entropy tables, at both ends, and must compute them the same way."""
    for name, m in model.named_modules():
        is_conv = isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))
        if is_conv and "latent" not in name.split("."):
            m.to(memory_format=torch.channels_last)


def weights_id(blob: bytes) -> bytes:
    """The 8-byte identity of a weights file written into every bitstream."""
    return hashlib.sha256(blob).digest()[:8]


class PreparedSide:
    """One or several side images prepared for one codec's decoder (``Codec.prepare_side``).
    ``ys``: the padded images, as many as the model uses (``max_sides``); ``given``: how many
    the caller gave."""

    def __init__(self, codec: Codec, ys: list[torch.Tensor], size: tuple[int, int], given: int):
        self.codec, self.ys, self.size = codec, ys, (int(size[0]), int(size[1]))
        self.given = given
        self._features: tuple[bool, object] | None = None

    @property
    def y(self) -> torch.Tensor:
        """The first side image (the one a single-side model uses)."""
        return self.ys[0]

    def features(self) -> object:
        bf16 = self.codec.bf16
        if self._features is None or self._features[0] != bf16:
            model = self.codec.model
            with torch.inference_mode(), fixed_threads():
                if getattr(model, "max_sides", 1) == 1:
                    feats = model.prepare_side(self.ys[0])
                else:
                    feats = [model.prepare_side(y) for y in self.ys]
                self._features = (bf16, feats)
        return self._features[1]


class Codec:
    """A model with fixed weights and a quality, behind a byte-level API.

    >>> codec = wzcodec.load("hyperprior", quality=3)
    >>> data = codec.encode(image)               # HxWx3 uint8 array, PIL image or path
    >>> x_hat = codec.decode(data, side=y)       # HxWx3 uint8
    >>> x_hat = codec.decode(data, side=[y1, y2])  # several cameras / past frames
    """

    def __init__(
        self,
        name: str,
        model: torch.nn.Module,
        wid: bytes,
        quality: float = 3.0,
        bf16: bool | None = None,
    ):
        self.name, self.model, self.weights_id = name, model.eval(), wid
        self.quality = quality
        self.bf16 = native_bf16() if bf16 is None else bf16
        channels_last_transforms(self.model)

    @property
    def bf16(self) -> bool:
        """Run the decoder-side transforms (synthesis; for side-information models also the
        y branch and attention) under bf16 autocast. The encoder transform, the entropy
        models and the hyperprior's scale path stay fp32, so the bitstream is the same bytes
        either way and decodes either way; only decoded pixels change (by ~0.02 dB PSNR).
        Default: on where the CPU has native bf16."""
        return self._bf16

    @bf16.setter
    def bf16(self, on: bool) -> None:
        self._bf16 = bool(on)
        for m in self.model.modules():
            if hasattr(m, "bf16"):
                m.bf16 = self._bf16

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_safetensors(
        cls,
        name: str,
        blob: bytes,
        config: dict,
        quality: float = 3.0,
        bf16: bool | None = None,
        base: bytes | None = None,
        base_spec: dict | None = None,
    ) -> Codec:
        """``base``: the frozen weights ``blob`` was trained over and leaves out (``dsin``'s
        hyperprior, ``ndic``'s atn) with the ``.json``'s ``base`` entry that says where they
        go (``with_base``); they take part in the weights id."""
        model = build(name, **config)
        model.load_state_dict(with_base(fp32_state(blob), base, base_spec or {}))
        return cls(name, model, weights_id((base or b"") + blob), quality, bf16)

    @classmethod
    def from_model(
        cls, model: torch.nn.Module, quality: float = 3.0, bf16: bool | None = None
    ) -> Codec:
        """Wrap an in-memory model (for example fresh from training); builds its CDF tables."""
        model.update(force=True)
        blob = st_save({k: v.contiguous() for k, v in model.state_dict().items()})
        return cls(model.model_name, model, weights_id(blob), quality, bf16)

    @property
    def levels(self) -> int:
        return self.model.levels

    @property
    def qualities(self) -> list[float]:
        """The model's default rate points (``wz eval`` sweeps these)."""
        return list(getattr(self.model, "qualities", range(1, self.levels + 1)))

    def _quality(self, quality: float | None) -> float:
        q = float(self.quality if quality is None else quality)
        if not 1 <= q <= self.levels:
            raise WzError(f"quality must be between 1 and {self.levels}, got {q:g}")
        if not self.model.entropy_coded:  # a standard codec's quality setting: an integer
            return float(round(q))
        return round(q * 256) / 256  # what the header can carry

    # -- the API ------------------------------------------------------------------------------
    @torch.inference_mode()
    def encode(self, image, quality: float | None = None, bpp: float | None = None) -> bytes:
        """Compress one image (never looks at any side image). ``bpp``: instead of a quality,
        the file size to aim for, in bits per pixel of the whole file: the highest quality
        whose file is no larger (bisection; the lowest quality if none fits)."""
        if bpp is not None:
            return self._encode_to_bpp(image, bpp)
        q = self._quality(quality)
        rgb = self._check_size(as_rgb(image))
        h, w = rgb.shape[:2]
        gray = is_gray(rgb)
        x = pad_to(to_tensor(rgb)[None], self.model.factor)
        with fixed_threads():
            out = self.model.compress(x, q)
        strings = [s[0] for s in out["strings"]]
        header = Header(self.name, self.weights_id, q, h, w, FLAG_GRAY if gray else 0)
        return Bitstream(header, strings).to_bytes()

    def _encode_to_bpp(self, image, bpp: float) -> bytes:
        rgb = self._check_size(as_rgb(image))
        budget = bpp * rgb.shape[0] * rgb.shape[1] / 8
        step = 1.0 if not self.model.entropy_coded else 1 / 32  # the quality grid searched
        lo, hi, best = 0, round((self.levels - 1) / step), None
        while lo <= hi:  # the largest grid quality whose file fits (sizes grow with quality)
            mid = (lo + hi) // 2
            data = self.encode(rgb, 1 + mid * step)
            if len(data) <= budget:
                best, lo = data, mid + 1
            else:
                hi = mid - 1
        return best if best is not None else self.encode(rgb, 1.0)

    @torch.inference_mode()
    def decode(self, data: bytes, side=None) -> np.ndarray:
        """Rebuild the image; ``side`` (same size as the coded image) is used if the model can.
        ``side`` may be a list of images (another camera, the previous frame, ...): models
        over a standard codec use them all (each patch matched in whichever side image fits
        it best); the others use the first (``max_sides``). A model over a standard codec
        (``avif-si``) also takes that codec's plain file (a camera's ``.avif``): it needs no
        header, since its refiner is told no quality."""
        data = self.wrap(data)
        bs = self.check(data)
        h, w = bs.header.height, bs.header.width
        y = None
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
            y = side.features()
        ph, pw = (
            -(-h // self.model.factor) * self.model.factor,
            -(-w // self.model.factor) * self.model.factor,
        )
        # CompressAI's rANS decoder reads past the end of a corrupt string (a crash, not an
        # error): give every string a zero tail longer than any read the decoder can make
        tail = bytes(4 * self.model.max_symbols(ph, pw) + 64) if self.model.entropy_coded else b""
        strings = [[s + tail] for s in bs.strings]
        try:
            with fixed_threads():
                x_hat = self.model.decompress(strings, (ph, pw), bs.header.quality, side=y)
        except (ValueError, RuntimeError, IndexError, AssertionError) as e:
            raise BitstreamError(
                f"entropy-coded data does not decode ({type(e).__name__})"
            ) from None
        img = to_uint8(crop_to(x_hat, h, w))
        if bs.header.gray:
            img = np.repeat(
                img.astype(np.float32).mean(2, keepdims=True).round().astype(np.uint8), 3, axis=2
            )
        return img

    def wrap(self, data: bytes) -> bytes:
        """A plain file of this model's base codec (a camera's ``.avif``) as this codec's
        bitstream (its quality unknown, written as 1); any other data unchanged."""
        from wzcodec import classical

        if self.model.entropy_coded or not self.model.accepts(data):
            return data

        try:
            with contextlib.redirect_stderr(None):
                img = classical.decode(data)
        except Exception as e:  # Pillow and its plugins raise many kinds on a bad file
            raise BitstreamError(
                f"not a decodable {self.model.base_codec.upper()} file ({type(e).__name__})"
            ) from None
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
        most = getattr(self.model, "max_sides", 1)
        ys = [pad_to(to_tensor(rgb)[None], self.model.factor) for rgb in rgbs[:most]]
        return PreparedSide(self, ys, rgbs[0].shape[:2], len(images))

    @property
    def max_sides(self) -> int | None:
        """How many side images this model uses at once (None: any number)."""
        return getattr(self.model, "max_sides", 1)

    def _check_size(self, rgb: np.ndarray) -> np.ndarray:
        fixed = getattr(self.model, "fixed_size", None)
        if fixed is not None and rgb.shape[:2] != tuple(fixed):
            raise ImageError(
                f"{self.name} codes {fixed[1]}x{fixed[0]} images only (the paper protocol), "
                f"got {rgb.shape[1]}x{rgb.shape[0]}; use atn for any size"
            )
        return rgb

    def check(self, data: bytes) -> Bitstream:
        """Parse ``data`` and verify it was made by this model and, for an entropy-coded
        model, these weights (its bits mean nothing to other weights). A file of a model
        over a standard codec (``avif-si``) is that codec's bytes: any receiver refines it,
        so its weights id only records which receiver the sender shipped, and a newer
        receiver decodes every file an older release wrote."""
        bs = parse(data)
        if bs.header.model != self.name:
            raise BitstreamError(
                f"bitstream was made by model {bs.header.model!r}, not {self.name!r}"
            )
        if self.model.entropy_coded and bs.header.weights_id != self.weights_id:
            raise BitstreamError(
                f"weights mismatch: bitstream needs weights {bs.header.weights_id.hex()}, "
                f"loaded {self.weights_id.hex()}"
            )
        return bs

    @torch.inference_mode()
    def reconstruct(
        self, image, side=None, quality: float | None = None
    ) -> tuple[np.ndarray, float]:
        """Eval-mode forward pass (no entropy coding): (reconstruction, bpp estimated from
        the likelihoods). ``decode(encode(x))`` equals this reconstruction."""
        q = self._quality(quality)
        rgb = self._check_size(as_rgb(image))
        h, w = rgb.shape[:2]
        if not self.model.entropy_coded:  # no likelihoods: the real file's bits
            data = self.encode(rgb, q)
            return self.decode(data, side=side), len(data) * 8 / (h * w)
        x = pad_to(to_tensor(rgb)[None], self.model.factor)
        if isinstance(side, (list, tuple)):
            side = side[0] if side else None  # a learned model's forward takes one side image
        y = pad_to(to_tensor(as_rgb(side))[None], self.model.factor) if side is not None else None
        with fixed_threads():  # the sum too: its rounding depends on the thread count
            out = self.model(x, y, q)
            bpp = bits_per_pixel(out["likelihoods"], h * w).item()
        return to_uint8(crop_to(out["x_hat"], h, w)), bpp


def weights_file(name: str) -> Path:
    """The shipped weights of model ``name`` (models over a standard codec share theirs)."""
    return WEIGHTS_DIR / f"{getattr(MODELS[name], 'weights_name', name)}.safetensors"


def available() -> list[str]:
    """Model names that have shipped weights."""
    return sorted(name for name in MODELS if weights_file(name).exists())


def load(
    name: str = "hyperprior",
    quality: float | None = None,
    weights: str | Path | None = None,
    bf16: bool | None = None,
) -> Codec:
    """Load a codec with shipped weights (or a ``weights`` .safetensors file with its .json).
    ``quality``: the default of ``encode`` (learned models 1..6, default 3; models over a
    standard codec take its quality setting, 1..100, default 30). ``bf16``: decoder-side
    transforms in bf16 (default: where the CPU does bf16 natively). Raises ``WzError`` for an
    unknown name, missing weights or weights of another model; ``available()`` lists the
    names that ship weights."""
    if name not in MODELS:
        raise WzError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    if quality is None:
        quality = getattr(MODELS[name], "default_quality", 3.0)
    path = Path(weights) if weights else weights_file(name)
    if not path.exists():
        raise WzError(f"no weights for model {name!r} ({path} missing); train one with `wz train`")
    if path.suffix != ".safetensors":
        raise WzError(f"{path}: weights must be a .safetensors file")
    blob = path.read_bytes()
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    base = base_weights(path, meta.get("base"))
    try:
        codec = Codec.from_safetensors(
            name, blob, meta.get("config", {}), quality, bf16, base, meta.get("base")
        )
    except (RuntimeError, KeyError, ValueError) as e:
        raise WzError(
            f"{path}: weights do not fit model {name!r} ({str(e).splitlines()[0]})"
        ) from None
    codec._quality(quality)
    return codec


def read_header(data: bytes) -> Header:
    return parse(data).header
