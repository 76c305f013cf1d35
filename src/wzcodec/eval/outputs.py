"""What ``wz eval`` writes: rate-distortion plots, ``per_image.csv``, ``summary.json``,
``bd_rate.csv``, all written atomically, and the table printed at the end.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from wzcodec.eval.results import FIELDS, bd_table, fixed_method, summarize
from wzcodec.files import atomic_open


def plot(summary: dict, path: Path, metric: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [g for g in ("color", "gray", "all") if g in summary]
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4.2), squeeze=False)
    tab20 = plt.get_cmap("tab20").colors  # dark shades first: tab10 would repeat at 11 methods
    colors = tab20[::2] + tab20[1::2]
    for ax, g in zip(axes[0], groups, strict=True):
        xmax, seen = 1.2, []
        for i, (m, pts) in enumerate(sorted(summary[g].items())):
            pts = sorted(pts, key=lambda p: p["bpp"])
            style = "--" if fixed_method(m) else ":" if "(published)" in m else "-"
            ax.plot(
                [p["bpp"] for p in pts],
                [p[metric] for p in pts],
                style,
                marker="o",
                ms=3,
                label=m,
                color=colors[i % 20],
            )
            seen += [p[metric] for p in pts if p["bpp"] <= xmax and math.isfinite(p[metric])]
        ax.set_xlabel("bits per pixel (real file)")
        ax.set_ylabel({"psnr": "PSNR (dB)", "ms_ssim_db": "MS-SSIM (dB)"}[metric])
        ax.set_title(f"{title} [{g}]")
        ax.set_xlim(0, min(xmax, ax.get_xlim()[1]))
        if seen:  # the shown bpp range only: a codec's 50 dB top point would squash the rest
            ax.set_ylim(min(seen) - 0.5, max(seen) + 0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def save_figure(fig, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically (nothing half-written) and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_open(path) as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)


def write_outputs(
    rows: list[dict],
    out: Path,
    anchor: str,
    title: str,
    reference: dict | None = None,
    side: str = "true",
) -> dict:
    """per_image.csv, summary.json (means, BD-rates against ``anchor``, the ``side`` mode the
    decoder got), bd_rate.csv and the RD plots in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "per_image.csv") as f:
        text = _csv_text(rows)
        f.write(text.encode())
    summary = summarize(rows)
    if reference:
        summary.setdefault("all", {}).update(reference)
    bd = {metric: bd_table(summary, anchor, metric) for metric in ("psnr", "ms_ssim_db")}
    with atomic_open(out / "summary.json") as f:
        f.write(
            json.dumps(
                {
                    "summary": summary,
                    "bd_rate_vs": anchor,
                    "bd_rate": bd,
                    "side": side,
                    "title": title,
                },
                indent=1,
            ).encode()
        )
    lines = ["group,model,bd_rate_psnr_percent,bd_rate_msssim_db_percent"]
    for g in bd["psnr"]:
        for m in bd["psnr"][g]:
            lines.append(
                f"{g},{m},{bd['psnr'][g][m]:.2f},{bd['ms_ssim_db'][g].get(m, math.nan):.2f}"
            )
    with atomic_open(out / "bd_rate.csv") as f:
        f.write(("\n".join(lines) + "\n").encode())
    plot(summary, out / "rd_psnr.png", "psnr", title)
    plot(summary, out / "rd_msssim.png", "ms_ssim_db", title)
    return {"summary": summary, "bd_rate": bd}


def _csv_text(rows: list[dict]) -> str:

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FIELDS)
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def print_summary(result: dict, anchor: str) -> None:
    for g, models in result["summary"].items():
        print(f"\n[{g}]  BD-rate vs {anchor} (PSNR / MS-SSIM dB)")
        for m, pts in models.items():
            bd_p = result["bd_rate"]["psnr"].get(g, {}).get(m, math.nan)
            bd_s = result["bd_rate"]["ms_ssim_db"].get(g, {}).get(m, math.nan)
            curve = "  ".join(
                f"{p['bpp']:.3f}/{p['psnr']:.2f}" for p in sorted(pts, key=lambda p: p["bpp"])
            )
            print(f"  {m:<12} {bd_p:+7.1f}% {bd_s:+7.1f}%   bpp/PSNR: {curve}")
