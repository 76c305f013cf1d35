"""BD-rate of every method of one or more ``wz eval`` runs on the same images against any one
of them (the README's comparison with the best classical codec):

    python scripts/bd_rate_table.py heic results/stereo-test-native
    python scripts/bd_rate_table.py heic results/RUN_A results/RUN_B   # methods of two runs
    python scripts/bd_rate_table.py heic results/RUN --max-bpp 0.3     # the low rates only

A method measured in several runs is taken from the first run that has it.
"""

from __future__ import annotations

import argparse
import math
import sys

from wzcodec.errors import WzError
from wzcodec.evaluate import bd_table, check_mergeable, read_rows, summarize


def combined_rows(runs: list[list[dict]]) -> list[dict]:
    rows: list[dict] = []
    for run in runs:
        if rows:
            check_mergeable(sorted({r["image"] for r in rows}), run)
        have = {r["model"] for r in rows}
        rows += [r for r in run if r["model"] not in have]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("anchor", help="the reference method, e.g. heic or hyperprior")
    ap.add_argument("runs", nargs="+", help="wz eval run folders (or per_image.csv files)")
    ap.add_argument("--group", default="all", help="all, gray or color")
    ap.add_argument(
        "--max-bpp", type=float, help="only each method's rate points whose mean bpp is at most B"
    )
    a = ap.parse_args(argv)
    try:
        summary = summarize(combined_rows([read_rows(r) for r in a.runs]))
    except WzError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.max_bpp is not None:
        summary = {
            g: {m: [p for p in pts if p["bpp"] <= a.max_bpp] for m, pts in ms.items()}
            for g, ms in summary.items()
        }
    if a.anchor not in summary.get(a.group, {}):
        print(f"error: no {a.anchor} rows in group {a.group}", file=sys.stderr)
        return 2
    psnr = bd_table(summary, a.anchor, "psnr")[a.group]
    msssim = bd_table(summary, a.anchor, "ms_ssim_db")[a.group]
    below = f", points <= {a.max_bpp} bpp" if a.max_bpp is not None else ""
    print(f"BD-rate vs {a.anchor} ({a.group}{below}), PSNR / MS-SSIM dB")
    for m in sorted(psnr, key=lambda m: (math.isnan(psnr[m]), psnr[m])):
        print(f"  {m:<12} {psnr[m]:+7.1f}% {msssim[m]:+7.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
