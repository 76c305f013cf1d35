"""Shipping weights from a flow-receiver run that is still training: the checkpoint's net,
its rate gate fitted on the run's held-out pairs (as the run does when it ends), exported.

    python experiments/flow-receiver/snapshot.py runs/receiver-flow --out runs/snapshot
    wz eval ... --models avif-si=runs/snapshot/refiner-si.safetensors@avif-flow

Runs beside the training (it reads the checkpoint, writes nothing into the run).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from wzcodec import catalog
from wzcodec.models import build
from wzcodec.training.checkpoint import CHECKPOINT
from wzcodec.training.flow import split_pairs
from wzcodec.training.gate import calibrate
from wzcodec.weights import save_weights


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pairs", type=int, help="held-out pairs for the gate (default: calibrate)")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    state = torch.load(a.run / CHECKPOINT, map_location="cpu", weights_only=False)
    cfg = state["config"]
    model = build(cfg["model"], **cfg["model_config"])
    model.load_state_dict(state["model"])
    model.receiver.bf16 = bool(cfg["bf16"])
    _, held = split_pairs(cfg)
    n = a.pairs or int(cfg["calibrate"] or 24)
    report = calibrate(model, held[:n], cfg["qualities"])
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "gate.json").write_text(json.dumps(report, indent=1))
    meta = {"step": state["step"], "distortion": "mse", "bases": cfg["bases"]}
    name = catalog.entry(cfg["model"]).weights_name
    path = save_weights(model, a.out, name, meta)
    gains = {b: report[b]["gain_db"] for b in cfg["qualities"]}
    print(f"step {state['step']}: wrote {path}; gated gain on {len(held[:n])} held-out pairs:")
    print(json.dumps(gains, indent=1))


if __name__ == "__main__":
    main()
