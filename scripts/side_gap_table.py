"""The README's table of side information that lies: per model and quality, the mean PSNR with
the true y and, for each stress run (``wz eval --side other|shifted|dark|none|oracle``), the
mean PSNR and its gap to the true y, over the images the stress runs coded. The oracle (y = x
itself) bounds what any side image could give: a negative gap there is the gain left unused.

    python scripts/side_gap_table.py results/stereo-test-native results/side-gap

The true-y run may cover more images (every 2nd test pair; the stress runs every 6th): only
the images of the stress runs count.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from wzcodec.evaluate import read_rows

MODES = {
    "other": "unrelated y (another pair's)",
    "shifted": "y shifted 32 px",
    "dark": "y at half brightness",
    "none": "no y",
    "oracle": "y = x (oracle)",
}


def _means(rows: list[dict], images: set[str]) -> dict[tuple[str, float], float]:
    acc: dict = defaultdict(list)
    for r in rows:
        if r["image"] in images:
            acc[(r["model"], r["quality"])].append(r["psnr"])
    return {k: float(np.mean(v)) for k, v in acc.items()}


def side_gaps(true_rows: list[dict], runs: dict[str, list[dict]]) -> list[dict]:
    """[{model, quality, true, <mode>: psnr, <mode>_gap: true - psnr}] for every (model,
    quality) measured with the true y and in every stress run, on the stress runs' images."""
    images = {r["image"] for rows in runs.values() for r in rows}
    true = _means(true_rows, images)
    per_mode = {m: _means(rows, images) for m, rows in runs.items()}
    order = ["hyperprior", "ndic", "atn", "atn-paper", "dsin"]
    keys = sorted(
        (k for k in true if all(k in v for v in per_mode.values())),
        key=lambda k: (order.index(k[0]) if k[0] in order else len(order), k[0], k[1]),
    )
    out = []
    for model, q in keys:
        row = {"model": model, "quality": q, "true": true[(model, q)]}
        for m, means in per_mode.items():
            row[m] = means[(model, q)]
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("true_run", help="wz eval run with the true y (folder or per_image.csv)")
    ap.add_argument("side_runs", help="folder holding one wz eval run per --side mode")
    a = ap.parse_args(argv)
    modes = [m for m in MODES if (Path(a.side_runs) / m / "per_image.csv").exists()]
    if not modes:
        print(f"error: no {'/'.join(MODES)} runs under {a.side_runs}", file=sys.stderr)
        return 2
    runs = {m: read_rows(Path(a.side_runs) / m) for m in modes}
    print(markdown(side_gaps(read_rows(a.true_run), runs), modes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
