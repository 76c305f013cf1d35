"""An ``atn-paper`` or ``ndic`` warm start from a trained ``atn``: the NDIC part (E_x, E_y, E_w,
D_y, D_x's x and w inputs, the latent's per-level gains) is taken tensor for tensor.

    atn:        E_x, E_y, E_w, D_y, D_x (x and w inputs), latent gains ──► kept
    atn-paper:  reference CAMs, factorised prior                        ──► fresh
                D_x's CAM inputs (stages 2..4)                          ──► zero
    ndic:       the mean-scale hyperprior too                           ──► kept
                D_x's CAM inputs (stages 2..4)                          ──► cut

atn-paper thus first decodes as atn does without its CAMs (the new CAMs cannot inject noise);
ndic *is* atn without its CAMs, with atn's bitstream, and only its D_x needs training (it then
measures exactly what the cross-attention adds). Both keep atn's channel counts (N = 128,
M = 192 for the shipped atn; the reference atn-paper has N = M = 192).

    python scripts/graft_from_atn.py --model atn-paper \
        --atn src/wzcodec/weights/atn.safetensors --out runs/atn-paper-graft-init
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from wzcodec.models import build
from wzcodec.weights import load_weights, save_weights


def graft(atn_path: Path, model: str = "atn-paper", **size) -> torch.nn.Module:
    """``size``: ``height``, ``width`` of an atn-paper (default 128x256)."""
    meta = json.loads(atn_path.with_suffix(".json").read_text())
    keys = ("N", "M", "levels", "w_noise", "side_dropout")
    cfg = {k: meta["config"][k] for k in keys if k in meta["config"]}
    new = build(model, **cfg, **size)
    state, src = new.state_dict(), load_weights(atn_path)
    N = new.N
    cut = {_name(new, m) for m in (new.d_x[1][0], new.d_x[2][0], new.d_x[3])}
    for k, v in src.items():  # coder tables (eb_y._quantized_cdf ...) may change size
        if k not in state or k.startswith("cams."):
            continue
        if v.shape == state[k].shape or k.startswith(("eb_y._", "eb_w._")):
            state[k] = v
        elif k in cut and model == "ndic":  # ConvTranspose weight (in, out, k, k): x inputs first
            state[k] = v[:N]
        elif model == "ndic" and k.startswith("latent."):
            state[k] = v  # the hyperprior's coder tables
    new.load_state_dict(state)
    if model == "atn-paper":
        with torch.no_grad():
            for k in cut:
                dict(new.named_parameters())[k][N:] = 0
    return new


def _name(model: torch.nn.Module, module: torch.nn.Module) -> str:
    return next(n for n, m in model.named_modules() if m is module) + ".weight"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--model", choices=["atn-paper", "ndic"], default="atn-paper")
    ap.add_argument("--atn", type=Path, required=True, help="a trained atn .safetensors")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    model = graft(a.atn, a.model)
    meta = {"trained": f"graft ({a.model}): the NDIC part of {a.atn}"}
    print(save_weights(model, a.out, model.model_name, meta=meta))


if __name__ == "__main__":
    main()
