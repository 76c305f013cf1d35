"""RD plot of chosen methods of a ``wz eval`` run (the README's lead figure):

    python scripts/plot_rd.py results/stereo-test-native --models avif,heic,avif-si,heic-si \
        --out results/stereo-test-native/rd_over_codec.png
    python scripts/plot_rd.py results/stereo-test-native --models avif-si,heic-si,avif-pf,heic-pf \
        --gain --out results/stereo-test-native/gain_over_codec.png
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from wzcodec.errors import WzError
from wzcodec.evaluate import plot, read_rows, save_figure, summarize


def plot_gain(models: dict, path: Path, title: str) -> None:
    """PSNR of each model over a base codec minus its base decode's, against bpp."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for m, pts in sorted(models.items()):
        pts = [p for p in sorted(pts, key=lambda p: p["bpp"]) if math.isfinite(p["psnr_base"])]
        if pts:
            style = "-" if m.endswith("-si") else ":"
            ax.plot([p["bpp"] for p in pts], [p["psnr"] - p["psnr_base"] for p in pts], style,
                    marker="o", ms=3, label=m)  # fmt: skip
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("bits per pixel (real file, log scale)")
    ax.set_ylabel("PSNR gain over the base decode (dB)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", help="a wz eval output folder (or its per_image.csv)")
    ap.add_argument("--models", required=True, help="comma-separated methods to draw")
    ap.add_argument("--metric", default="psnr", choices=["psnr", "ms_ssim_db"])
    ap.add_argument("--title", default="")
    ap.add_argument(
        "--gain", action="store_true", help="plot PSNR over the base decode of the same bytes"
    )
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    try:
        rows = read_rows(a.run)
        want = a.models.split(",")
        missing = sorted(set(want) - {r["model"] for r in rows})
        if missing:
            raise WzError(f"{a.run} has no rows of {', '.join(missing)}")
        summary = summarize([r for r in rows if r["model"] in want])
        if a.gain:
            plot_gain(summary["all"], Path(a.out), a.title or Path(a.run).name)
        else:
            plot(summary, Path(a.out), a.metric, a.title or Path(a.run).name)
    except WzError as e:
        print(f"plot_rd: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
