"""Mean PSNR gain of a receiver over its base decode (the same bytes) per quality, with the
mean bpp and on how many images it is positive, and the BD-rate of the refined decode against
the base decode (mean curves; up to 0.2 and 0.3 bpp, and all rates), from a ``wz eval`` run's
per_image.csv (a run need not hold the base codec's own rows).

    python experiments/flow-receiver/gains.py results/stereo-test-native avif-si heic-si
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path

from wzcodec.metrics import bd_rate


def main(run: str, *models: str) -> None:
    rows = list(csv.DictReader((Path(run) / "per_image.csv").open()))
    for m in models:
        by_q: dict[float, list[tuple[float, float]]] = defaultdict(list)
        for r in rows:
            if r["model"] == m and r["psnr_base"] not in ("", "nan"):
                gain = float(r["psnr"]) - float(r["psnr_base"])
                by_q[float(r["quality"])].append((float(r["bpp"]), gain))
        print(f"{m}: quality, mean bpp, mean gain (dB), images gaining")
        curve = []
        for q in sorted(by_q):
            v = by_q[q]
            bpp = sum(b for b, _ in v) / len(v)
            gain = sum(g for _, g in v) / len(v)
            up = sum(g > 0 for _, g in v)
            print(f"  q{q:g}: {bpp:.3f} bpp, {gain:+.3f} dB, {up}/{len(v)}")
            base = [float(r["psnr_base"]) for r in rows if r["model"] == m
                    and float(r["quality"]) == q and r["psnr_base"] not in ("", "nan")]  # fmt: skip
            curve.append((bpp, sum(base) / len(base), sum(base) / len(base) + gain))
        for most in (0.2, 0.3, float("inf")):
            pts = [c for c in curve if c[0] <= most]
            rates = [c[0] for c in pts]
            bd = bd_rate(rates, [c[1] for c in pts], rates, [c[2] for c in pts])
            print(f"  BD-rate vs the base decode, up to {most:g} bpp: {bd:+.1f}%")


if __name__ == "__main__":
    main(sys.argv[1], *sys.argv[2:])
