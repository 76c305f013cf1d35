"""``wz demo``: the main job on bundled data, no downloads and no ``../shared``.

Pairs: scikit-image's Middlebury "motorcycle" stereo pair (colour, shipped in its wheel) and the
two bundled OAK-D pairs (gray, MIT). For each pair and each shipped model: encode x, decode
with the side image y, and measure; JPEG is set to the file size closest to the model's.
Writes every reconstruction and one side-by-side PNG (x | y | each model | JPEG).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from wzcodec import classical
from wzcodec.codec import available, load
from wzcodec.errors import WzError
from wzcodec.images import read_rgb, save_image
from wzcodec.metrics import bpp, ms_ssim, psnr
from wzcodec.models import MODELS

SAMPLES = Path(__file__).parent / "samples"


def sample_pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    from skimage import data

    left, right, _ = data.stereo_motorcycle()
    pairs = [("motorcycle", np.asarray(left), np.asarray(right))]
    for x in sorted((SAMPLES / "oakd" / "left").glob("*.png")):
        pairs.append((f"oakd-{x.stem}", read_rgb(x), read_rgb(SAMPLES / "oakd" / "right" / x.name)))
    return pairs


def _row(
    pair: str, method: str, nbytes: int, x: np.ndarray, x_hat: np.ndarray, enc: float, dec: float
):
    return {
        "pair": pair,
        "method": method,
        "bytes": nbytes,
        "bpp": bpp(nbytes, *x.shape[:2]),
        "psnr": psnr(x, x_hat),
        "ms_ssim": ms_ssim(x, x_hat),
        "enc_s": enc,
        "dec_s": dec,
    }


def run_demo(
    out: Path, models: list[str] | None = None, quality: float | None = None
) -> list[dict]:
    """``quality``: every model's (default: each model's own default, 3 or AVIF/HEIC 30)."""
    # by default every shipped model that codes any size (atn-paper codes 128x256 only)
    models = models or [m for m in available() if MODELS[m].any_size]
    if not models:
        raise WzError("no shipped model weights found; train and export one (see docs/training.md)")
    out.mkdir(parents=True, exist_ok=True)
    codecs = {m: load(m, quality=quality) for m in models}
    rows: list[dict] = []
    panels: list[np.ndarray] = []
    for i, (name, x, y) in enumerate(sample_pairs()):
        first_bytes = None
        for m, codec in codecs.items():
            t = time.perf_counter()
            data = codec.encode(x)
            enc = time.perf_counter() - t
            t = time.perf_counter()
            x_hat = codec.decode(data, side=y)
            dec = time.perf_counter() - t
            rows.append(_row(name, f"{m} q{codec.quality:g}", len(data), x, x_hat, enc, dec))
            save_image(out / f"{name}_{m}.png", x_hat)
            (out / f"{name}_{m}.wz").write_bytes(data)
            first_bytes = first_bytes or len(data)
            if i == 0:
                panels.append(x_hat)
        jq, _ = classical.match_size("jpeg", x, first_bytes)
        t = time.perf_counter()
        jdata = classical.encode("jpeg", x, jq)
        enc = time.perf_counter() - t
        t = time.perf_counter()
        j_hat = classical.decode(jdata)
        dec = time.perf_counter() - t
        rows.append(_row(name, f"jpeg q{jq}", len(jdata), x, j_hat, enc, dec))
        save_image(out / f"{name}_jpeg.png", j_hat)
        if i == 0:
            save_image(out / "side_by_side.png", np.concatenate([x, y, *panels, j_hat], axis=1))
    _print_table(rows)
    print(f"\nreconstructions and side_by_side.png (x | y | {' | '.join(codecs)} | jpeg) in {out}/")
    return rows


def _print_table(rows: list[dict]) -> None:
    cols = ("bytes", "bpp", "PSNR", "MS-SSIM", "enc s", "dec s")
    head = f"{'pair':<16}{'method':<18}" + "".join(f"{c:>9}" for c in cols)
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['pair']:<16}{r['method']:<18}{r['bytes']:>9}{r['bpp']:>9.4f}{r['psnr']:>9.2f}"
            f"{r['ms_ssim']:>9.4f}{r['enc_s']:>9.3f}{r['dec_s']:>9.3f}"
        )
