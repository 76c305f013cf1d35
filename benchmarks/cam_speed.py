"""Time atn's three attention modules (``BandCAM``) alone, full rows vs a window:

    python benchmarks/cam_speed.py --size 384x1280 --window 16

Random bf16 channels-last features of the decoder's shapes for an image of ``--size`` (padded
to a multiple of 64, as the codec does): N = 128 channels at 1/8, 1/4 and 1/2 scale, patches
1, 2 and 4. Best of ``--repeats`` after one warm-up, inference mode, bf16 autocast, 2 threads.
The cost does not depend on the weights, so the modules are freshly initialised.
"""

from __future__ import annotations

import argparse
import time

import torch

from wzcodec.models.layers import BandCAM


def time_cam(cam: BandCAM, fx: torch.Tensor, fy: torch.Tensor, repeats: int) -> float:
    best = float("inf")
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        cam(fx, fy)
        for _ in range(repeats):
            t = time.perf_counter()
            cam(fx, fy)
            best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="384x1280", help="HxW of the (padded) image")
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    h, w = (int(v) for v in a.size.split("x"))
    total = {"full": 0.0, "window": 0.0}
    for patch, scale in ((1, 8), (2, 4), (4, 2)):
        shape = (1, 128, h // scale, w // scale)
        fx, fy = (
            torch.randn(shape).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
            for _ in range(2)
        )
        line = f"patch {patch} ({shape[2]}x{shape[3]})"
        for kind, window in (("full", 0), ("window", a.window)):
            cam = BandCAM(128, patch=patch, window=window).eval()
            t = time_cam(cam, fx, fy, a.repeats)
            total[kind] += t
            line += f"  {kind} {t:.3f} s"
        print(line)
    print(f"three CAMs: full rows {total['full']:.3f} s, window {a.window} {total['window']:.3f} s")


if __name__ == "__main__":
    main()
