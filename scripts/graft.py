"""Graft a trained side-information model's side path (``ndic`` or ``atn``) onto a trained
``hyperprior``: the starting point of a run that can only add to the single-image codec.

    hyperprior:   g_a, latent codec, g_s ──► E_x, latent codec, D_x (x inputs)
    ndic / atn:   E_y, E_w, D_y, eb_y, eb_w (and atn's CAMs) ──► kept as they are
    D_x's side inputs (w at stage 1; atn: the CAM outputs at stages 2..4) x ``--side-scale``

With ``--side-scale 0`` the grafted model decodes exactly as the hyperprior (same bitstream,
same image: every weight that reads y is zero) while its side path is already trained, so a
continuation starts at the hyperprior's rate-distortion curve instead of below it. With 1 the
trained side weights are kept; all these models descend from the same CPU hyperprior, so
their x paths are related.

    python scripts/graft.py --side runs/atn-cpu-shipped/atn.safetensors \
        --hyperprior src/wzcodec/weights/hyperprior.safetensors --side-scale 0 \
        --out runs/atn-graft-init [--compare 6]

The model (``ndic`` or ``atn``) is the one ``--side``'s JSON names. ``--compare N`` prints
bpp / PSNR at q1 and q6 on N centre crops of train-split stereo pairs for the hyperprior and
the grafted model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from wzcodec.models import build
from wzcodec.training.config import resolve
from wzcodec.training.data import val_pairs
from wzcodec.training.validate import validate
from wzcodec.weights import load_weights, save_weights

SIDE_PREFIXES = ("e_y.", "e_w.", "d_y.", "cams.", "eb_y.", "eb_w.")


def graft(side_path: Path, hp_path: Path, side_scale: float) -> torch.nn.Module:
    """A model of ``side_path``'s kind with the hyperprior's x path and its side path."""
    meta = json.loads(side_path.with_suffix(".json").read_text())
    model = build(meta["model"], **meta["config"])
    model.load_state_dict(load_weights(side_path))
    keep = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(SIDE_PREFIXES)}
    loaded = model.load_hyperprior(load_weights(hp_path), side_scale=side_scale)
    x_path = {n for n, _ in model.named_parameters() if n.startswith(("e_x.", "latent.", "d_x."))}
    if x_path - loaded:
        raise SystemExit(f"not in the hyperprior: {sorted(x_path - loaded)[:3]}")
    model.load_state_dict(keep, strict=False)  # undo load_hyperprior's E_y, E_w, D_y
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--side", type=Path, required=True, help="an ndic or atn .safetensors")
    ap.add_argument("--hyperprior", type=Path, required=True)
    ap.add_argument("--side-scale", type=float, default=0.0)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--compare", type=int, default=0, metavar="N")
    a = ap.parse_args()
    torch.set_num_threads(2)
    model = graft(a.side, a.hyperprior, a.side_scale)
    meta = {
        "trained": f"graft: x path of {a.hyperprior}, side path of {a.side}, "
        f"D_x's side inputs x {a.side_scale}"
    }
    print(save_weights(model, a.out, model.model_name, meta=meta))
    if a.compare:
        cfg = {
            "data": {
                "val": "stereo:../shared/data/stereo",
                "val_count": a.compare,
                "val_split": "train",
            }
        }
        pairs = val_pairs(resolve(cfg))
        hp_cfg = json.loads(a.hyperprior.with_suffix(".json").read_text())["config"]
        hp = build("hyperprior", **hp_cfg)
        hp.load_state_dict(load_weights(a.hyperprior))
        for name, m in (("hyperprior", hp), ("graft", model)):
            r = validate(m, pairs, [1.0, 6.0])
            print(name, {k: round(v, 4) for k, v in r.items()})


if __name__ == "__main__":
    main()
