"""Decode time and peak memory of avif-si with given receiver weights, at 375x1242 and at
1024x2048 (4.5x the pixels), 2 threads: base decode, alignment and fusion net together.
Each size runs in a fresh process, so the peak RSS is that size's alone.

    python experiments/flow-receiver/speed.py --weights runs/snapshot-1/refiner-si.safetensors
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

SIZES = [(375, 1242), (1024, 2048)]


def worker(weights: str, h: int, w: int, repeats: int) -> dict:
    import numpy as np
    from PIL import Image
    from skimage import data

    import wzcodec

    x, y, _ = data.stereo_motorcycle()
    x, y = (np.asarray(Image.fromarray(a).resize((w, h), Image.BILINEAR)) for a in (x, y))
    codec = wzcodec.load("avif-si", quality=20, weights=weights or None)
    blob = codec.encode(x)
    codec.decode(blob, side=y)  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        codec.decode(blob, side=y)
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    codec.decode(blob)
    base = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {
        "size": f"{w}x{h}",
        "decode_s": statistics.median(times),
        "base_s": base,
        "peak_gb": peak,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--worker", nargs=3, type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.weights, *a.worker)))
        return
    rows = []
    for h, w in SIZES:
        cmd = [
            sys.executable,
            __file__,
            "--weights",
            a.weights,
            "--worker",
            str(h),
            str(w),
            str(a.repeats),
        ]
        rows.append(
            json.loads(
                subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[
                    -1
                ]
            )
        )
        print(rows[-1], flush=True)
    ratio = rows[1]["decode_s"] / rows[0]["decode_s"]
    print(f"time ratio for {1024 * 2048 / (375 * 1242):.1f}x the pixels: {ratio:.2f}x")


if __name__ == "__main__":
    main()
