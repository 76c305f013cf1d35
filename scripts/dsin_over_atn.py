"""A ``dsin-atn`` from a trained ``dsin`` and a trained ``atn``: DSIN's fusion net, as it was
trained over the hyperprior, put over atn (atn's weights are referenced, not copied, as dsin
references its hyperprior). Measured zero-shot in the README before any training over atn.

    python scripts/dsin_over_atn.py --dsin src/wzcodec/weights/dsin.safetensors \
        --atn src/wzcodec/weights/atn.safetensors --out src/wzcodec/weights
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file

from wzcodec.models import build
from wzcodec.weights import load_weights, save_weights


def dsin_over_atn(dsin_path: Path, atn_path: Path) -> torch.nn.Module:
    dsin_cfg = json.loads(dsin_path.with_suffix(".json").read_text())["config"]
    atn_cfg = json.loads(atn_path.with_suffix(".json").read_text())["config"]
    model = build(
        "dsin-atn", **{**atn_cfg, "search_v": dsin_cfg["search_v"], "sigma": dsin_cfg["sigma"]}
    )
    model.base.load_state_dict(load_weights(atn_path))
    fusion = {k[7:]: v.float() for k, v in load_file(dsin_path).items() if k.startswith("fusion.")}
    model.fusion.load_state_dict(fusion)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--dsin", type=Path, required=True, help="a trained dsin .safetensors")
    ap.add_argument("--atn", type=Path, required=True, help="a trained atn .safetensors")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    model = dsin_over_atn(a.dsin, a.atn)
    a.out.mkdir(parents=True, exist_ok=True)
    base = a.out / a.atn.name
    if base.resolve() != a.atn.resolve():
        shutil.copyfile(a.atn, base)
        shutil.copyfile(a.atn.with_suffix(".json"), base.with_suffix(".json"))
    meta = {"trained": f"the fusion net of {a.dsin} (trained over the hyperprior), over {a.atn}"}
    print(save_weights(model, a.out, "dsin-atn", meta=meta, base=base))


if __name__ == "__main__":
    main()
