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
    stages = _stages(codec, blob, y, repeats)
    return {
        "size": f"{w}x{h}",
        "decode_s": statistics.median(times),
        "base_s": base,
        "peak_gb": peak,
        **stages,
    }


def _stages(codec, blob: bytes, y, repeats: int) -> dict:
    """Median time of the receiver's two stages alone: alignment (two DIS flows, warp,
    confidence) and the fusion net."""
    import torch

    from wzcodec.images import to_tensor
    from wzcodec.threads import fixed_threads

    rec = codec.model.receiver
    x_hat = to_tensor(codec.base_decode(blob))[None]
    side = [to_tensor(y)[None]]
    bpp = torch.tensor([8 * len(blob) / (x_hat.shape[2] * x_hat.shape[3])])
    align, net = [], []
    with torch.inference_mode(), fixed_threads():
        for _ in range(repeats):
            t = time.perf_counter()
            y_w, conf = rec.align(x_hat, side)
            align.append(time.perf_counter() - t)
            y_w = y_w.contiguous(memory_format=torch.channels_last)
            t = time.perf_counter()
            rec.residual(x_hat, y_w, conf, bpp)
            net.append(time.perf_counter() - t)
    return {"align_s": statistics.median(align), "net_s": statistics.median(net)}


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
    pixels = 1024 * 2048 / (375 * 1242)
    for key in ("decode_s", "align_s", "net_s"):
        ratio = rows[1][key] / rows[0][key]
        print(f"{key}: time ratio for {pixels:.1f}x the pixels: {ratio:.2f}x")


if __name__ == "__main__":
    main()
