"""Which side image helps a DSIN fusion net most on top of atn? A quick probe on test crops
(the models' forward passes, no bitstream): atn's x̂, then x̂ + F(x̂, y_syn) with the shipped
``dsin``'s fusion net F and three versions of y_syn, each also scored against x itself:

- ``readout``: D_y's last stage on CAM 3's output (y's features as the finest attention
  re-arranged them; ``side_probe.py --readout``);
- ``shift``: y's pixels moved per 8x8 token by CAM 2's strongest key (``side_probe.py --warp``);
- ``dsin match``: DSIN's y_syn, patches of y cut where atn's ŷ (y decoded without a side
  image) correlates best with x̂.

    python experiments/atn-side-path/fusion_probe.py --weights runs/atn-match-export/atn.safetensors

Crops as in ``side_probe.py`` (top-left 384x768 of every 6th stereo test pair, 7 pairs).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from side_probe import crops, psnr, shift, strongest_key

import wzcodec
from wzcodec.models.dsin import match_patches


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--weights", help="atn weights (default: the shipped atn)")
    p.add_argument("--data", default="stereo:../shared/data/stereo")
    p.add_argument("--every", type=int, default=6)
    p.add_argument("--count", type=int, default=7)
    p.add_argument("--qualities", default="1,4")
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    atn = wzcodec.load("atn", weights=a.weights).model.eval()
    dsin = wzcodec.load("dsin").model.eval()
    data = crops(a.data, a.every, a.count, 384, 768)
    print(f"{len(data)} crops; PSNR (dB) against x")
    caught: dict[int, tuple] = {}  # each CAM's (inputs, output) in the last decode
    for i, cam in enumerate(atn.cams):
        cam.register_forward_hook(lambda _m, inp, out, i=i: caught.__setitem__(i, (inp, out)))
    for q in (float(v) for v in a.qualities.split(",")):
        res: dict[str, list[float]] = {}
        for x, y in data:
            with torch.no_grad():
                v_hat = atn.latent(atn.e_x(x), q)["y_hat"]
                x_hat = atn.decode_x(v_hat, atn.side(y, x)).float()
                readout = atn.d_y[3](caught[2][1].float())
                dr, dc = strongest_key(atn.cams[1], *caught[1][0])
                y_hat = atn(y, None, q)["x_hat"].float()
                y_syn = {
                    "readout": readout,
                    "shift": shift(y, dr, dc, 8),
                    "dsin match": match_patches(
                        x_hat, y_hat, y, search_v=dsin.search_v, sigma=dsin.sigma
                    ),
                }
                res.setdefault("atn x̂", []).append(psnr(x_hat, x))
                for k, ys in y_syn.items():
                    res.setdefault(f"{k} y_syn", []).append(psnr(ys, x))
                    res.setdefault(f"{k} x̂+F", []).append(psnr(x_hat + dsin.fusion(x_hat, ys), x))
        print(f"q{q:g} | " + " | ".join(f"{k} {np.mean(v):.2f}" for k, v in res.items()))


if __name__ == "__main__":
    main()
