"""How well each alignment puts y onto x̂: PSNR of the aligned y against x, and its time.

Every 4th stereo test pair, x̂ = AVIF (speed 6) at q 2 / 20 / 40. Methods: DSIN's patch
matching (the receiver shipped before the flow receiver, full resolution), OpenCV DIS flow
(fast, medium) with wzcodec.receiver.align, and SGBM disparity on rectified pairs (its
invalid pixels filled with x̂, and the share of valid pixels reported).

    python experiments/flow-receiver/align_probe.py --out results/align-probe
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from wzcodec import classical
from wzcodec.data import from_spec
from wzcodec.images import read_rgb, to_tensor
from wzcodec.metrics import psnr
from wzcodec.models.dsin import match_patches
from wzcodec.receiver import align as al

UNRECTIFIED = {"euroc_kimera_tests"}


def sgbm(x_hat: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """y warped by SGBM's left-right disparity (x̂ where it has none); valid share."""
    m = cv2.StereoSGBM_create(
        0, 192, 5, 8 * 25, 32 * 25, 1, 0, 10, 100, 2, cv2.STEREO_SGBM_MODE_SGBM_3WAY
    )
    d = m.compute(al.gray(x_hat), al.gray(y)).astype(np.float32) / 16
    valid = d > 0
    f = np.zeros((*d.shape, 2), np.float32)
    f[..., 0] = -np.where(valid, d, 0)
    w = al.warp(y, f)
    return np.where(valid[..., None], w, x_hat), float(valid.mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="stereo:../shared/data/stereo")
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--qualities", default="2,20,40")
    ap.add_argument("--out", default="results/align-probe")
    a = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    pairs = from_spec(a.data, split="test")[:: a.every]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for p in pairs:
        x, y = read_rgb(p.x), read_rgb(p.y)
        if x.shape != y.shape:
            continue
        for q in map(int, a.qualities.split(",")):
            data = classical.encode("avif", x, q)
            x_hat = classical.decode(data)
            row = {
                "pair": p.x.name,
                "source": p.source,
                "q": q,
                "bpp": 8 * len(data) / (x.shape[0] * x.shape[1]),
                "x_hat": psnr(x, x_hat),
            }
            t = time.perf_counter()
            with torch.no_grad():
                syn = match_patches(to_tensor(x_hat)[None], to_tensor(y)[None], to_tensor(y)[None])
            row["t_match"] = time.perf_counter() - t
            row["match"] = psnr(x, (syn[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
            for preset in ("fast", "medium"):
                t = time.perf_counter()
                r = al.align(x_hat, y, preset)
                row[f"t_dis_{preset}"] = time.perf_counter() - t
                yw = (r.y * 255).round().astype(np.uint8)
                row[f"dis_{preset}"] = psnr(x, yw)
                # where the flow leaves y, x̂ (what a receiver falls back on)
                row[f"dis_{preset}_inside"] = psnr(x, np.where(r.conf[..., 1:2] > 0, yw, x_hat))
                trust = r.trust > 0.5
                row[f"dis_{preset}_trusted"] = float(trust.mean())
                err = (r.y * 255 - x.astype(np.float32)) ** 2
                row[f"dis_{preset}_psnr_trusted"] = float(
                    10 * np.log10(255**2 / max(err[trust].mean(), 1e-9)) if trust.any() else 0
                )
            if p.source not in UNRECTIFIED:
                t = time.perf_counter()
                w, valid = sgbm(x_hat, y)
                row["t_sgbm"] = time.perf_counter() - t
                row["sgbm"], row["sgbm_valid"] = psnr(x, w), valid
            rows.append(row)
            print(
                {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}, flush=True
            )
    keys = sorted(
        {k for r in rows for k in r}, key=lambda k: list(rows[0]).index(k) if k in rows[0] else 99
    )
    with open(out / "align.csv", "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
