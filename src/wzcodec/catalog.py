"""Every model and codec by name, what it is for, and what its coder needs to know before
anything is built: no PyTorch is imported here, so ``wz models``, a refusal of an unknown name
and a standard codec's encoder answer at once.

    name ─► Entry(kind, base, weights, uses_side, default quality, summary)
              kind "learned":  an end-to-end model (``models/``), entropy-coded with rANS
              kind "receiver": a standard codec's file, refined with y at the receiver
              kind "classical": a standard codec alone (Pillow and its plugins)
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MODEL = "heic-si"  # what the README recommends


@dataclass(frozen=True)
class Entry:
    name: str
    kind: str  # "learned", "receiver" or "classical"
    summary: str
    base: str = ""  # the standard codec (a ``classical.CODECS`` setting) it codes with
    weights: str = ""  # the shipped weights' file stem (receivers share theirs)
    uses_side: bool = True
    default_quality: float = 3.0
    ablation: bool = False

    @property
    def weights_name(self) -> str:
        return self.weights or self.name

    @property
    def levels(self) -> int:
        """Qualities run 1..levels: a learned model's 6 rate points, a standard codec's 100."""
        return 6 if self.kind == "learned" else 100

    @property
    def family(self) -> str:
        """The file format of the standard codec under it (``avif-s2`` -> ``avif``), or ""."""
        return self.base.split("-")[0]


def _learned(name: str, summary: str, uses_side: bool = True) -> Entry:
    return Entry(name, "learned", summary, uses_side=uses_side)


def _receiver(name: str, base: str, summary: str, uses_side: bool = True) -> Entry:
    weights = "refiner-si" if uses_side else "refiner-pf"
    return Entry(name, "receiver", summary, base, weights, uses_side, 30.0, not uses_side)


def _classical(name: str, summary: str) -> Entry:
    """``base``: the codec setting itself (``avif-s2`` codes at libaom speed 2)."""
    return Entry(name, "classical", summary, name, uses_side=False, default_quality=30.0)


CATALOG: dict[str, Entry] = {
    e.name: e
    for e in [
        _receiver("heic-si", "heic", "a HEIC file, refined with y at the receiver (recommended)"),
        _receiver("avif-si", "avif", "an AVIF file, refined with y at the receiver"),
        _receiver("heic-pf", "heic", "ablation: heic-si's net trained without y", False),
        _receiver("avif-pf", "avif", "ablation: avif-si's net trained without y", False),
        _learned("atn", "end-to-end: NDIC plus cross-attention in the decoder (WACV 2023)"),
        _learned("ndic", "end-to-end: neural distributed image compression (DCC 2022)"),
        _learned("dsin", "end-to-end: hyperprior plus DSIN's patch matching and fusion"),
        _learned("dsin-atn", "end-to-end: DSIN's refinement over atn"),
        _learned("atn-paper", "end-to-end: atn at the paper's fixed 128x256 protocol"),
        _learned("hyperprior", "end-to-end, single image: the mean-scale hyperprior", False),
        _classical("jpeg", "JPEG (libjpeg through Pillow), no side image"),
        _classical("webp", "WebP (libwebp), no side image"),
        _classical("avif", "AVIF (libaom, speed 6), no side image"),
        _classical("avif-s2", "AVIF at libaom speed 2: ~10% fewer bits, ~10x the time"),
        _classical("jxl", "JPEG XL (libjxl, effort 7), no side image"),
        _classical("heic", "HEIC (x265 through libheif), no side image"),
        _classical("heic-slow", "HEIC at x265's placebo preset"),
    ]
}


def entry(name: str) -> Entry:
    """The catalog entry of ``name``, or a ``WzError`` listing the names there are."""
    from wzcodec.errors import WzError

    if name not in CATALOG:
        raise WzError(f"unknown model {name!r}; `wz models` lists them: {', '.join(CATALOG)}")
    return CATALOG[name]
