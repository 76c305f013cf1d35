"""How much does a side-information model read y? A quick probe on test crops (the model's
forward pass with rounded latents, no bitstream: minutes, where ``wz eval --side`` takes an
hour): mean PSNR of x̂ with the true y, another pair's y, no y, and y = x itself (the oracle).

    python experiments/atn-side-path/side_probe.py --model atn
    python experiments/atn-side-path/side_probe.py --model atn \
        --weights runs/atn-match-export/atn.safetensors

Crops are the top-left 384x768 (or less) of every 6th stereo test pair, 7 pairs by default;
``--protocol paper`` takes whole pairs under the paper protocol (128x256) instead.

``--readout`` (atn) replaces D_x's last stage by D_y's, reading only CAM 3's output: x̂ is then
D_y's decoding of y's features as the finest attention re-arranged them, a measure of how much
of y that attention can carry to x's places (D_y rebuilds y itself at ~38 dB).

``--warp`` (atn) asks the same of a shift instead of a mix: D_y's features at CAM 3's scale are
moved, per 8x8-pixel token, by the row and column offset of the key each CAM's attention
weights most (heads averaged), and D_y's last stage decodes them; beside it the unshifted
features (no alignment) and an oracle shift, the best same-row match of x in y per token
(mean absolute difference, up to 128 px either way; x is not known to a decoder), as
features and as pixels of y itself. PSNR against x, in dB.
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


def shift(g: torch.Tensor, dr: torch.Tensor, dc: torch.Tensor, p: int) -> torch.Tensor:
    """Move ``g`` (B, C, h, w) by per-token offsets ``dr``, ``dc`` (B, h/p, w/p), in tokens of
    p x p pixels of ``g`` (bilinear; borders replicated)."""
    h, w = g.shape[-2:]

    def up(d: torch.Tensor) -> torch.Tensor:
        return d.repeat_interleave(p, 1).repeat_interleave(p, 2).float() * p

    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    sy, sx = yy[None] + up(dr), xx[None] + up(dc)
    grid = torch.stack([sx / (w - 1) * 2 - 1, sy / (h - 1) * 2 - 1], -1)
    return torch.nn.functional.grid_sample(
        g, grid, mode="bilinear", padding_mode="border", align_corners=True
    )


def strongest_key(cam: torch.nn.Module, fx: torch.Tensor, fy: torch.Tensor) -> tuple:
    """(row, column) offsets in tokens of the key each query weights most, heads averaged."""
    s = cam.scores(fx.float(), fy.float())  # (B, H, R, W, 2b+1, W)
    W = s.shape[3]
    i = s.flatten(-2).softmax(-1).mean(1).argmax(-1)
    return i // W - cam.band, i % W - torch.arange(W).view(1, 1, W)


def best_shift(x: torch.Tensor, y: torch.Tensor, t: int = 8, k: int = 128) -> tuple:
    """Oracle: per t x t token of x, the horizontal shift of y (-k..k px, step 2) with the
    least mean absolute difference, in tokens."""
    best = arg = None
    for d in range(-k, k + 1, 2):
        e = torch.nn.functional.avg_pool2d((x - torch.roll(y, -d, -1)).abs().mean(1, True), t)
        e = e[:, 0]
        if best is None:
            best, arg = e, torch.full_like(e, d)
        else:
            arg = torch.where(e < best, torch.full_like(e, d), arg)
            best = torch.minimum(e, best)
    return torch.zeros_like(arg), arg / t


def warp_report(model: torch.nn.Module, data: list, qualities: list[float]) -> None:
    last = model.d_y[3]
    for q in qualities:
        res: dict[str, list[float]] = {}
        for x, y in data:
            with torch.no_grad():
                caught = model.cam_inputs(x, y, q)
                g = caught[2][1].float()  # D_y's features at CAM 3's scale (H/2)
                p = g.shape[-1] // (x.shape[-1] // 8)  # feature pixels per 8x8-pixel token
                res.setdefault("no alignment", []).append(psnr(last(g), x))
                for i, (fx, fy) in enumerate(caught):
                    dr, dc = strongest_key(model.cams[i], fx, fy)
                    moved = last(shift(g, dr, dc, p))
                    res.setdefault(f"shift by CAM {i + 1}", []).append(psnr(moved, x))
                dr, dc = best_shift(x, y)
                res.setdefault("oracle shift", []).append(psnr(last(shift(g, dr, dc, p)), x))
                res.setdefault("oracle shift, y's pixels", []).append(psnr(shift(y, dr, dc, 8), x))
        print(f"q{q:g} | " + " | ".join(f"{k} {np.mean(v):.2f}" for k, v in res.items()))


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
    p.add_argument("--warp", action="store_true", help="x̂ from y's features shifted, not mixed")
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    model = wzcodec.load(a.model, weights=a.weights).model.eval()
    if a.readout:
        readout(model)
    h, w = (int(v) for v in a.crop.split("x"))
    data = crops(a.data, a.every, a.count, h, w, paper=a.protocol == "paper")
    if a.warp:
        print(f"{len(data)} crops; PSNR (dB) against x of D_y's last stage on y's features")
        warp_report(model, data, [float(v) for v in a.qualities.split(",")])
        return
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
