"""How much does a side-information model read y? A quick probe on test crops (the model's
forward pass with rounded latents, no bitstream: minutes, where ``wz eval --side`` takes an
hour): mean PSNR of x̂ with the true y, another pair's y, no y, and y = x itself (the oracle).

    python scripts/side_probe.py --model atn
    python scripts/side_probe.py --model atn --weights runs/atn-match-export/atn.safetensors

Crops are the top-left 384x768 (or less) of every 6th stereo test pair, 7 pairs by default;
``--protocol paper`` takes whole pairs under the paper protocol (128x256) instead.

``--readout`` (atn) replaces D_x's last stage by D_y's, reading only CAM 3's output: x̂ is then
D_y's decoding of y's features as the finest attention re-arranged them, a measure of how much
of y that attention can carry to x's places (D_y rebuilds y itself at ~38 dB).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import wzcodec
from wzcodec.data.pairs import from_spec
from wzcodec.data.protocols import paper_protocol
from wzcodec.images import read_rgb, to_tensor


def crops(spec: str, every: int, count: int, h: int, w: int, paper: bool = False) -> list[tuple]:
    out = []
    for pair in from_spec(spec, split="test")[::every][:count]:
        if paper:
            x, y = paper_protocol(read_rgb(pair.x), read_rgb(pair.y), pair)
            out.append((x[None], y[None]))
            continue
        x, y = to_tensor(read_rgb(pair.x))[None], to_tensor(read_rgb(pair.y))[None]
        hh, ww = min(x.shape[-2], h) // 64 * 64, min(x.shape[-1], w) // 64 * 64
        out.append((x[..., :hh, :ww], y[..., :hh, :ww]))
    return out


def readout(model: torch.nn.Module) -> None:
    """D_x's last convolution := D_y's on the CAM-output channels, zero on D_x's own."""
    last_x, last_y = model.d_x[3], model.d_y[3]
    n = last_y.weight.shape[0]
    with torch.no_grad():
        last_x.weight.zero_()
        last_x.weight[n:] = last_y.weight
        last_x.bias.copy_(last_y.bias)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(-10 * torch.log10(((a.float().clamp(0, 1) - b) ** 2).mean()))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--model", default="atn")
    p.add_argument("--weights", help="a weights file (default: the shipped model)")
    p.add_argument("--data", default="stereo:../shared/data/stereo")
    p.add_argument("--every", type=int, default=6)
    p.add_argument("--count", type=int, default=7)
    p.add_argument("--crop", default="384x768", help="HxW, at most")
    p.add_argument("--protocol", choices=["native", "paper"], default="native")
    p.add_argument("--qualities", default="1,4")
    p.add_argument("--readout", action="store_true", help="x̂ from CAM 3's output alone")
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    model = wzcodec.load(a.model, weights=a.weights).model.eval()
    if a.readout:
        readout(model)
    h, w = (int(v) for v in a.crop.split("x"))
    data = crops(a.data, a.every, a.count, h, w, paper=a.protocol == "paper")
    print(f"{len(data)} crops; PSNR (dB) of x̂ with each y")
    print("quality | true y | another pair's y | no y | y = x")
    for q in (float(v) for v in a.qualities.split(",")):
        res = {}
        for mode in ("true", "other", "none", "oracle"):
            vals = []
            for i, (x, y) in enumerate(data):
                side = {"true": y, "none": None, "oracle": x}.get(mode)
                if mode == "other":
                    side = torch.nn.functional.interpolate(
                        data[(i + 1) % len(data)][1], size=x.shape[-2:], mode="bilinear"
                    )
                with torch.no_grad():
                    vals.append(psnr(model(x, side, q)["x_hat"], x))
            res[mode] = float(np.mean(vals))
        cols = " | ".join(f"{res[k]:.3f}" for k in ("true", "other", "none", "oracle"))
        print(f"q{q:g} | {cols}")


if __name__ == "__main__":
    main()
