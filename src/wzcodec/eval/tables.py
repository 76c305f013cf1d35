"""Tables and plots made from ``wz eval`` runs: ``wz bd-rate``, ``wz side-gaps``,
``wz equal-bpp``, ``wz plot``.

    per_image.csv of one or more runs ──► combined_rows ──► summarize ──► BD-rate against any
                                                                        method (``bd_rates``)
    true-y run + one run per --side mode ──► side_gaps ──► markdown table

A method measured in several runs is taken from the first run that has it; runs must have
coded the same images (``check_mergeable``).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from wzcodec.errors import WzError
from wzcodec.eval.outputs import save_figure
from wzcodec.eval.results import BEST_CLASSICAL, bd_table, check_mergeable, summarize


def combined_rows(runs: list[list[dict]]) -> list[dict]:
    rows: list[dict] = []
    for run in runs:
        if rows:
            check_mergeable(sorted({r["image"] for r in rows}), run)
        have = {r["model"] for r in rows}
        rows += [r for r in run if r["model"] not in have]
    return rows


def bd_rates(
    rows: list[dict], anchor: str, group: str = "all", max_bpp: float | None = None
) -> str:
    """BD-rate (PSNR / MS-SSIM dB) of every method of ``rows`` against ``anchor``, best
    first; ``max_bpp`` keeps each method's rate points at most that many bits per pixel."""
    summary = summarize(rows)
    if max_bpp is not None:
        summary = {
            g: {m: [p for p in pts if p["bpp"] <= max_bpp] for m, pts in ms.items()}
            for g, ms in summary.items()
        }
    if anchor not in summary.get(group, {}) and anchor != BEST_CLASSICAL:
        raise WzError(f"no {anchor} rows in group {group}")
    psnr = bd_table(summary, anchor, "psnr")[group]
    msssim = bd_table(summary, anchor, "ms_ssim_db")[group]
    below = f", points <= {max_bpp} bpp" if max_bpp is not None else ""
    lines = [f"BD-rate vs {anchor} ({group}{below}), PSNR / MS-SSIM dB"]
    for m in sorted(psnr, key=lambda m: (math.isnan(psnr[m]), psnr[m])):
        lines.append(f"  {m:<12} {psnr[m]:+7.1f}% {msssim[m]:+7.1f}%")
    return "\n".join(lines)


# Side information that lies: per model and quality, the mean PSNR with the true y and, for
# each stress run (``wz eval --side other|shifted|dark|none|oracle``), the mean PSNR and its
# gap to the true y, over the images the stress runs coded (the true-y run may cover more).
# The oracle (y = x itself) bounds what any side image could give: a negative gap there is
# the gain left unused.
MODES = {
    "other": "unrelated y (another pair's)",
    "shifted": "y shifted 32 px",
    "dark": "y at half brightness",
    "none": "no y",
    "oracle": "y = x (oracle)",
}


def means(
    rows: list[dict], images: set[str] | None = None, value=lambda r: r["psnr"]
) -> dict[tuple[str, float], float]:
    """{(model, quality): mean of ``value(row)``} over the rows of ``images`` (default all)."""
    acc: dict = defaultdict(list)
    for r in rows:
        if images is None or r["image"] in images:
            acc[(r["model"], r["quality"])].append(value(r))
    return {k: float(np.mean(v)) for k, v in acc.items()}


def side_gaps(true_rows: list[dict], runs: dict[str, list[dict]]) -> list[dict]:
    """[{model, quality, true, <mode>: psnr, <mode>_gap: true - psnr}] for every (model,
    quality) measured with the true y and in every stress run, on the stress runs' images."""
    images = {r["image"] for rows in runs.values() for r in rows}
    true = means(true_rows, images)
    per_mode = {m: means(rows, images) for m, rows in runs.items()}
    order = ["hyperprior", "ndic", "atn", "atn-paper", "dsin"]
    keys = sorted(
        (k for k in true if all(k in v for v in per_mode.values())),
        key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k[0], k[1]),
    )
    out = []
    for model, q in keys:
        row = {"model": model, "quality": q, "true": true[(model, q)]}
        for m, psnrs in per_mode.items():
            row[m] = psnrs[(model, q)]
            row[f"{m}_gap"] = row["true"] - row[m]
        out.append(row)
    return out


def markdown(rows: list[dict], modes: list[str]) -> str:
    head = ["model, quality", "PSNR with true y", *(MODES.get(m, m) for m in modes)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{r['model']}, q{r['quality']:g}", f"{r['true']:.2f}"]
        cells += [f"{r[m]:.2f} (gap {r[f'{m}_gap']:+.3f} dB)" for m in modes]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare(path: str, a: str, b: str) -> list[tuple[float, int, int, float]]:
    """[(quality of a, images compared, images where a wins, mean PSNR difference dB)]."""
    curves: dict = defaultdict(lambda: defaultdict(list))
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            curves[r["image"]][r["model"]].append(
                (float(r["quality"]), float(r["bpp"]), float(r["psnr"]))
            )
    by_q: dict = defaultdict(list)
    for models in curves.values():
        if a not in models or b not in models:
            continue
        other = sorted(models[b], key=lambda p: p[1])
        bpps, psnrs = [p[1] for p in other], [p[2] for p in other]
        for q, bpp, p in models[a]:
            if bpps[0] <= bpp <= bpps[-1]:  # no extrapolation
                by_q[q].append(p - float(np.interp(bpp, bpps, psnrs)))
    return [(q, len(d), sum(x > 0 for x in d), float(np.mean(d))) for q, d in sorted(by_q.items())]


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
