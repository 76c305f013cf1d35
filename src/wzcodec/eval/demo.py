"""``wz demo``: the product's claim on bundled data, no downloads and no ``../shared``.

Pairs: scikit-image's Middlebury "motorcycle" stereo pair (colour, shipped in its wheel) and the
two bundled OAK-D pairs (gray, hand-held, MIT). For each pair: plain AVIF and HEIC, the same
files refined with y (``avif-si``, ``heic-si``), and refined without y (``-pf``, what y adds is
the difference); then the bits each ``-si`` file saves against its plain codec at equal PSNR
(the plain codec's rate for that PSNR, interpolated over a small sweep). Writes every decode
and ``demo.png``: x, y, the base decode and the refined decode, with a zoomed crop of each.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from wzcodec import catalog
from wzcodec.codec import available, load
from wzcodec.errors import WzError
from wzcodec.images import read_rgb, save_image
from wzcodec.metrics import bpp, psnr

SAMPLES = Path(__file__).parents[1] / "samples"  # the package's bundled pairs
DEFAULT_MODELS = ["avif", "avif-pf", "avif-si", "heic", "heic-pf", "heic-si"]
DEFAULT_QUALITY = 20.0  # a low rate (about 0.1 bpp on the motorcycle), where y helps most
SWEEP = [2, 5, 10, 15, 20, 25, 30, 40, 50, 60]  # the plain codecs' curve for "bits saved"


def sample_pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    from skimage import data

    left, right, _ = data.stereo_motorcycle()
    pairs = [("motorcycle", np.asarray(left), np.asarray(right))]
    for x in sorted((SAMPLES / "oakd" / "left").glob("*.png")):
        pairs.append((f"oakd-{x.stem}", read_rgb(x), read_rgb(SAMPLES / "oakd" / "right" / x.name)))
    return pairs


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bits_saved(rate: float, quality_db: float, curve: list[tuple[float, float]]) -> float:
    """1 - rate / (the plain codec's rate at ``quality_db``), in %, from its (bpp, PSNR)
    curve, interpolated in log rate; NaN outside the curve."""
    curve = sorted(curve, key=lambda c: c[1])
    ps = np.array([p for _, p in curve])
    rs = np.log(np.array([r for r, _ in curve]))
    if not ps[0] <= quality_db <= ps[-1]:
        return float("nan")
    return 100 * (1 - rate / float(np.exp(np.interp(quality_db, ps, rs))))


def run_demo(
    out: Path, models: list[str] | None = None, quality: float | None = None
) -> list[dict]:
    """``models``: default the plain AVIF / HEIC and their receivers with and without y;
    ``quality``: the standard codecs' setting (learned models: 1..6), default 20."""
    models = models or [m for m in DEFAULT_MODELS if m in available() or "-" not in m]
    for m in models:
        catalog.entry(m)
    if not models:
        raise WzError("no shipped model weights found; train and export one (see docs/training.md)")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    _say(f"loading {', '.join(models)} ...")
    codecs = {}
    for m in models:
        q = quality if quality is not None else DEFAULT_QUALITY
        codecs[m] = load(m, quality=q if catalog.entry(m).kind != "learned" else quality)
        _ = codecs[m].model  # a receiver's net is built now, not inside the first decode
    rows: list[dict] = []
    pairs = sample_pairs()
    for name, x, y in pairs:
        curves: dict[str, list[tuple[float, float]]] = {}
        for m, codec in codecs.items():
            _say(f"[{time.perf_counter() - t0:5.1f} s] {name}: {m} q{codec.quality:g}")
            t = time.perf_counter()
            data = codec.encode(x)
            enc = time.perf_counter() - t
            t = time.perf_counter()
            x_hat = codec.decode(data, side=y)
            dec = time.perf_counter() - t
            size = codec.stored_size(data)  # as wz eval counts it
            r = {"pair": name, "method": f"{m} q{codec.quality:g}", "model": m,
                 "bytes": size, "bpp": bpp(size, *x.shape[:2]),
                 "psnr": psnr(x, x_hat), "enc_s": enc, "dec_s": dec}  # fmt: skip
            rows.append(r)
            save_image(out / f"{name}_{m}.png", x_hat)
            (out / f"{name}_{m}.wz").write_bytes(data)
        for base in {catalog.entry(m).base for m in codecs if catalog.entry(m).kind == "receiver"}:
            _say(f"[{time.perf_counter() - t0:5.1f} s] {name}: {base.upper()}'s curve")
            plain = load(base)
            curves[base] = []
            for q in SWEEP:
                data = plain.encode(x, quality=q)
                rate = bpp(plain.stored_size(data), *x.shape[:2])
                curves[base].append((rate, psnr(x, plain.decode(data))))
        for r in rows:
            e = catalog.entry(r["model"])
            if r["pair"] == name and e.kind == "receiver" and e.base in curves:
                r["saved"] = bits_saved(r["bpp"], r["psnr"], curves[e.base])
    _print_table(rows)
    picture = _picture(out, pairs[0], codecs)
    print(
        "\nsaved: bits the file saves against its plain codec at the same PSNR. The OAK-D "
        "pairs are hand-held gray views far apart, so y overlaps little with x there."
    )
    print(f"every decode and {picture.name} (x, y, base and refined decode, zoomed) in {out}/")
    _say(f"done in {time.perf_counter() - t0:.0f} s")
    return rows


def _print_table(rows: list[dict]) -> None:
    cols = ("bytes", "bpp", "PSNR", "saved", "enc s", "dec s")
    head = f"{'pair':<16}{'method':<16}" + "".join(f"{c:>9}" for c in cols)
    print(head)
    print("-" * len(head))
    for r in rows:
        saved = f"{r['saved']:>8.1f}%" if not np.isnan(r.get("saved", np.nan)) else f"{'':>9}"
        print(
            f"{r['pair']:<16}{r['method']:<16}{r['bytes']:>9}{r['bpp']:>9.4f}{r['psnr']:>9.2f}"
            f"{saved}{r['enc_s']:>9.3f}{r['dec_s']:>9.3f}"
        )


def _picture(out: Path, pair, codecs) -> Path:
    """x, y, the base decode and the refined decode of the first receiver, each with a
    zoomed crop below it, labelled with bytes and PSNR."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name, x, y = pair
    receivers = [m for m in codecs if catalog.entry(m).kind == "receiver" and codecs[m].uses_side]
    first = next(iter(receivers), None)
    si = catalog.DEFAULT_MODEL if catalog.DEFAULT_MODEL in receivers else first
    panels = [("x (the original)", x), ("y (the side image)", y)]
    if si is not None:
        codec = codecs[si]
        data = codec.encode(x)
        base, refined = codec.base_decode(data), codec.decode(data, side=y)
        rate = f"{len(data)} bytes, {bpp(len(data), *x.shape[:2]):.3f} bpp"
        base_name = catalog.entry(si).base.upper()
        panels += [
            (f"{base_name} decode: {psnr(x, base):.2f} dB\n({rate})", base),
            (f"{si} with y: {psnr(x, refined):.2f} dB\n(the same file)", refined),
        ]
    h, w = x.shape[:2]
    ch, cw = h // 4, w // 4
    top, left = (h - ch) // 2, (w - cw) // 2
    fig, axes = plt.subplots(2, len(panels), figsize=(4.2 * len(panels), 6.4))
    for k, (title, img) in enumerate(panels):
        axes[0, k].imshow(img)
        axes[0, k].set_title(title, fontsize=10)
        axes[1, k].imshow(img[top : top + ch, left : left + cw], interpolation="nearest")
        axes[1, k].set_title("zoom (4x)" if k else "zoom (4x): the centre", fontsize=9)
        for ax in axes[:, k]:
            ax.set_xticks([])
            ax.set_yticks([])
    axes[0, 0].add_patch(
        matplotlib.patches.Rectangle((left, top), cw, ch, fill=False, edgecolor="yellow")
    )
    fig.suptitle(f"{name}: the receiver refines the camera's own file with y", fontsize=12)
    fig.tight_layout()
    path = out / "demo.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
