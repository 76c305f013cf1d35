"""Mean PSNR gain of a receiver over its base decode (the same bytes) per quality, with the
mean bpp and on how many images it is positive, from a ``wz eval`` run's per_image.csv.

    python experiments/flow-receiver/gains.py results/stereo-test-native avif-si heic-si
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from pathlib import Path


def main(run: str, *models: str) -> None:
    rows = list(csv.DictReader((Path(run) / "per_image.csv").open()))
    for m in models:
        by_q: dict[float, list[tuple[float, float]]] = defaultdict(list)
        for r in rows:
            if r["model"] == m and r["psnr_base"] not in ("", "nan"):
                gain = float(r["psnr"]) - float(r["psnr_base"])
                by_q[float(r["quality"])].append((float(r["bpp"]), gain))
        print(f"{m}: quality, mean bpp, mean gain (dB), images gaining")
        for q in sorted(by_q):
            v = by_q[q]
            bpp = sum(b for b, _ in v) / len(v)
            gain = sum(g for _, g in v) / len(v)
            up = sum(g > 0 for _, g in v)
            print(f"  q{q:g}: {bpp:.3f} bpp, {gain:+.3f} dB, {up}/{len(v)}")


if __name__ == "__main__":
    main(sys.argv[1], *sys.argv[2:])
