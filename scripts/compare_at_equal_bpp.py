"""Per image and rate point: PSNR of model A minus PSNR of model B at A's bpp (B's curve on
that image interpolated linearly between its rate points), from a ``wz eval`` per_image.csv.

    python scripts/compare_at_equal_bpp.py results/stereo-test-native/per_image.csv hyperprior jpeg
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict

import numpy as np


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("per_image_csv")
    p.add_argument("a")
    p.add_argument("b")
    args = p.parse_args()
    print(f"quality of {args.a}: images, {args.a} better, mean PSNR({args.a}) - PSNR({args.b})")
    for q, n, wins, mean in compare(args.per_image_csv, args.a, args.b):
        print(f"  q{q:g}: {n} images, better on {wins}, {mean:+.2f} dB")


if __name__ == "__main__":
    main()
