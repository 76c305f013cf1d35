"""Does atn's attention find the corresponding places of y? Per CAM, over rectified stereo
pairs (x = left, y = right, so x's column c appears in y at c - d, d >= 0), head 0:

- ``same row``: share of queries whose strongest key lies in the query's own token row
  (a uniform guess over the 2b+1 rows of the band gives 1/(2b+1));
- ``plausible``: share whose strongest key lies in the own row at a disparity of 0..D tokens
  (8 px per token), where stereo correspondences are;
- ``peak``: mean weight of the strongest key (1 = one key takes all, 1/keys = uniform);
- ``identity`` (with ``--oracle``, y = x itself): share whose strongest key is the query's
  own position, where a matcher must look when y is x.

    (from the repository root)
    python experiments/atn-side-path/attention_alignment.py --every 6
    python experiments/atn-side-path/attention_alignment.py --weights runs/x/atn.safetensors \
        --max-disparity 16
    python experiments/atn-side-path/attention_alignment.py \
        --warm-start src/wzcodec/weights/hyperprior.safetensors
    python experiments/atn-side-path/attention_alignment.py --oracle
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

import wzcodec
from wzcodec.codec import Codec
from wzcodec.data.pairs import from_spec
from wzcodec.images import read_rgb


def alignment(attention: torch.Tensor, max_disparity: int) -> dict[str, float]:
    """Statistics of one CAM's head-0 map (R, W, 2b+1, W) (see the module docstring)."""
    R, W, nb, _ = attention.shape
    flat = attention.float().reshape(R, W, nb * W)
    best = flat.argmax(-1)
    row, col = best // W, best % W
    disparity = torch.arange(W)[None, :] - col
    same = row == nb // 2
    plausible = same & (disparity >= 0) & (disparity <= max_disparity)
    return {
        "same_row": same.float().mean().item(),
        "plausible": plausible.float().mean().item(),
        "peak": flat.max(-1).values.mean().item(),
        "identity": (same & (disparity == 0)).float().mean().item(),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--data", default="stereo:../shared/data/stereo")
    p.add_argument("--split", default="test")
    p.add_argument("--every", type=int, default=6)
    p.add_argument("--weights", help="an atn weights file (default: the shipped atn)")
    p.add_argument("--warm-start", help="a hyperprior file: atn as training starts from it")
    p.add_argument("--quality", type=float, default=3.0)
    p.add_argument("--max-disparity", type=int, default=16, help="tokens (8 px each)")
    p.add_argument("--oracle", action="store_true", help="y = x itself: report identity")
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    if a.warm_start:
        from wzcodec.models import build
        from wzcodec.weights import load_weights

        torch.manual_seed(0)
        model = build("atn")
        model.load_hyperprior(load_weights(a.warm_start))
        model.update(force=True)
        codec = Codec.from_model(model, quality=a.quality)
    else:
        codec = wzcodec.load("atn", quality=a.quality, weights=a.weights)
    for cam in codec.model.cams:
        cam.keep_attention = True
    pairs = from_spec(a.data, split=a.split)[:: a.every]
    stats: list[list[dict[str, float]]] = [[] for _ in codec.model.cams]
    for pair in pairs:
        x, y = read_rgb(pair.x), read_rgb(pair.y)
        codec.decode(codec.encode(x), side=x if a.oracle else y)
        for i, cam in enumerate(codec.model.cams):
            stats[i].append(alignment(cam.last_attention[0], a.max_disparity))
    nb = 2 * codec.model.cams[0].band + 1
    print(f"{len(pairs)} pairs; uniform guess: same row {1 / nb:.2f}")
    for i, s in enumerate(stats):
        mean = {k: float(np.mean([d[k] for d in s])) for k in s[0]}
        print(
            f"CAM {i + 1} (decoder stage {i + 1}): same row {mean['same_row']:.2f}, "
            f"plausible (0..{a.max_disparity} tokens) {mean['plausible']:.2f}, "
            f"peak {mean['peak']:.3f}" + (f", identity {mean['identity']:.2f}" if a.oracle else "")
        )


if __name__ == "__main__":
    main()
