"""An ``atn-paper`` warm start from a trained ``atn``: the NDIC part (E_x, E_y, E_w, D_x, D_y
and the latent's per-level gains) is taken tensor for tensor, the reference CAMs and the
factorised prior start fresh, and D_x's inputs from the CAMs start at zero (so the model first
decodes as atn does without y, and the new CAMs cannot inject noise).

    atn:        E_x, E_y, E_w, D_y, D_x (x and w inputs), latent gains ──► kept
                BandCAMs, mean-scale hyperprior                         ──► dropped
    atn-paper:  ChannelPatchCAMs, factorised prior                      ──► fresh
                D_x's CAM inputs (stages 2..4)                          ──► zero

atn-paper must then have atn's channel counts (N = 128, M = 192 for the shipped atn), not
the reference's N = M = 192.

    python scripts/graft_paper.py --atn src/wzcodec/weights/atn.safetensors \
        --out runs/atn-paper-graft-init
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from wzcodec.models import build
from wzcodec.train import load_weights, save_weights


def graft_paper(atn_path: Path, height: int = 128, width: int = 256) -> torch.nn.Module:
    meta = json.loads(atn_path.with_suffix(".json").read_text())
    keys = ("N", "M", "levels", "w_noise", "side_dropout")
    cfg = {k: meta["config"][k] for k in keys if k in meta["config"]}
    model = build("atn-paper", **cfg, height=height, width=width)
    state, src = model.state_dict(), load_weights(atn_path)
    for k, v in src.items():  # coder tables (eb_y._quantized_cdf ...) may change size
        if (
            k in state
            and not k.startswith("cams.")
            and (v.shape == state[k].shape or k.startswith(("eb_y._", "eb_w._")))
        ):
            state[k] = v
    model.load_state_dict(state)
    N = model.N
    with torch.no_grad():
        for stage in (model.d_x[1][0], model.d_x[2][0], model.d_x[3]):
            stage.weight[N:] = 0  # ConvTranspose weight: (in, out, k, k); CAM channels last
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--atn", type=Path, required=True, help="a trained atn .safetensors")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    model = graft_paper(a.atn)
    meta = {"trained": f"graft: the NDIC part of {a.atn}; reference CAMs and prior fresh"}
    print(save_weights(model, a.out, model.model_name, meta=meta))


if __name__ == "__main__":
    main()
