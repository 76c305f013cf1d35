"""``wz train``: variable-rate training with exact resume, and ``wz export`` to shipping weights.

    YAML config ──► PairDataset(train specs, TrainTransform) ──► batches (own RNG, resumable)
                ──► model(x, y, q) ──► RateDistortionLoss(λ[q]) ──► Adam (+ aux Adam for EB)
                ──► CSV log, validation (true y vs zero y), atomic checkpoints every few minutes

Each sample of a batch draws its own quality level q and is weighted by that level's λ, so one
run trains every rate point. The batch stream is drawn from a checkpointed generator, so
``--resume`` continues with exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from wzcodec.data import PairDataset, TrainTransform, from_spec
from wzcodec.data.protocols import PROTOCOLS
from wzcodec.files import atomic_open
from wzcodec.models import build
from wzcodec.models.loss import RateDistortionLoss

CHECKPOINT = "checkpoint.pt"


def load_config(path: str | Path) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def _specs(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _rng_state(gen: torch.Generator) -> dict:
    return {
        "torch": torch.get_rng_state(),
        "gen": gen.get_state(),
        "python": random.getstate(),
        "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
    }


def save_checkpoint(
    path: Path, model, opt, aux_opt, step: int, gen: torch.Generator, cfg: dict
) -> None:
    state = {
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "aux_opt": aux_opt.state_dict(),
        "step": step,
        "rng": _rng_state(gen),
        "config": cfg,
    }
    with atomic_open(path) as f:
        torch.save(state, f)


def split_params(model: torch.nn.Module):
    main = [p for n, p in model.named_parameters() if not n.endswith(".quantiles")]
    aux = [p for n, p in model.named_parameters() if n.endswith(".quantiles")]
    return main, aux


class Batches:
    """Random training batches drawn with a dedicated, checkpointable generator."""

    def __init__(self, dataset: PairDataset, batch: int, gen: torch.Generator):
        self.ds, self.batch, self.gen = dataset, batch, gen

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(self.ds), (self.batch,), generator=self.gen).tolist()
        seeds = torch.randint(2**31 - 1, (self.batch,), generator=self.gen).tolist()
        xs, ys = [], []
        for i, s in zip(idx, seeds, strict=True):
            p = self.ds.pairs[i]
            x = self.ds._load(p.x)
            y = self.ds._load(p.y) if p.y is not None else None
            xt, yt = self.ds.transform(x, y, p, random.Random(s))
            xs.append(xt)
            ys.append(yt)
        return torch.stack(xs), torch.stack(ys)


@torch.no_grad()
def validate(model, pairs: list[torch.Tensor], levels: list[float]) -> dict[str, float]:
    """Mean bpp (estimated) and PSNR at the given levels, with the true y and with y = 0."""
    model.eval()
    res: dict[str, float] = {}
    crit = RateDistortionLoss()
    for q in levels:
        bpp, psnr, psnr0 = [], [], []
        for x, y in pairs:
            out = model(x, y, q)
            m = crit(out, x, y, torch.zeros(1))
            bpp.append(m["bpp"].item())
            psnr.append(-10 * math.log10(max(m["mse"].item(), 1e-12)))
            if getattr(model, "uses_side", False):
                out0 = model(x, torch.zeros_like(y), q)
                psnr0.append(
                    -10 * math.log10(max(crit(out0, x, y, torch.zeros(1))["mse"].item(), 1e-12))
                )
        res[f"val_bpp_q{q:g}"] = float(np.mean(bpp))
        res[f"val_psnr_q{q:g}"] = float(np.mean(psnr))
        if psnr0:
            res[f"val_sidegap_q{q:g}"] = float(np.mean(psnr) - np.mean(psnr0))
    model.train()
    return res


def _val_pairs(cfg: dict) -> list[tuple[torch.Tensor, torch.Tensor]]:
    spec = cfg["data"].get("val")
    if not spec:
        return []
    pairs = from_spec(spec, split=cfg["data"].get("val_split", "test"))
    pairs = pairs[:: max(1, len(pairs) // cfg["data"].get("val_count", 4))][
        : cfg["data"].get("val_count", 4)
    ]
    out = []
    for p in pairs:
        ds = PairDataset([p], transform=PROTOCOLS[cfg.get("val_protocol", "native")], preload=False)
        x, y = ds[0]
        h, w = (min(x.shape[1], 256) // 64) * 64, (min(x.shape[2], 512) // 64) * 64
        top, left = (x.shape[1] - h) // 2, (x.shape[2] - w) // 2
        box = (slice(None), slice(top, top + h), slice(left, left + w))
        out.append((x[box][None], y[box][None]))
    return out


def train(
    config_path: str | Path,
    out_dir: str | Path,
    resume: bool = False,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume) a model; returns the last logged metrics."""
    cfg = load_config(config_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.get("seed", 0))
    random.seed(cfg.get("seed", 0))
    np.random.seed(cfg.get("seed", 0))

    model = build(cfg["model"], **cfg.get("model_config", {}))
    model.bf16 = bool(cfg.get("bf16", False))
    model = model.to(memory_format=torch.channels_last)
    main_params, aux_params = split_params(model)
    opt = torch.optim.Adam(main_params, lr=cfg["lr"])
    aux_opt = torch.optim.Adam(aux_params, lr=cfg.get("aux_lr", 1e-3))
    gen = torch.Generator().manual_seed(cfg.get("seed", 0))
    step = 0

    ckpt_path = out_dir / CHECKPOINT
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        aux_opt.load_state_dict(state["aux_opt"])
        step = state["step"]
        torch.set_rng_state(state["rng"]["torch"])
        gen.set_state(state["rng"]["gen"])
        random.setstate(_tuplify(state["rng"]["python"]))
    (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    pairs = [p for spec in _specs(cfg["data"]["train"]) for p in from_spec(spec, split="train")]
    transform = TrainTransform(crop=cfg.get("crop", 256), protocol=cfg.get("train_protocol"))
    batches = Batches(PairDataset(pairs, transform=transform), cfg["batch"], gen)
    val_pairs = _val_pairs(cfg)
    lambdas = torch.tensor(cfg["lambdas"], dtype=torch.float32)
    levels = len(lambdas)
    crit = RateDistortionLoss(
        cfg.get("distortion", "mse"), cfg.get("alpha", 0.0), cfg.get("beta", 0.0)
    )

    total = min(cfg["steps"], max_steps) if max_steps else cfg["steps"]
    log_path = out_dir / "log.csv"
    new_log = not log_path.exists() or step == 0
    with open(log_path, "w" if new_log else "a", newline="") as log_f:
        log = csv.writer(log_f)
        if new_log:
            log.writerow(["step", "time", "loss", "bpp", "psnr", "lr", "extra"])
        t0 = time.time()
        last_ckpt = time.time()
        metrics: dict = {}
        run_loss, run_bpp, run_mse, run_n = 0.0, 0.0, 0.0, 0
        bar = tqdm(
            total=total, initial=step, disable=not progress, dynamic_ncols=True, desc=cfg["model"]
        )
        model.train()
        while step < total:
            if max_minutes is not None and time.time() - t0 > max_minutes * 60:
                break
            lr = cfg["lr"] * min(1.0, (step + 1) / max(1, cfg.get("lr_warmup", 0)))
            lr *= 0.1 ** sum(step >= s for s in cfg.get("lr_drop_at", []))
            for g in opt.param_groups:
                g["lr"] = lr
            x, y = batches.next()
            x = x.contiguous(memory_format=torch.channels_last)
            y = y.contiguous(memory_format=torch.channels_last)
            q = torch.randint(levels, (x.shape[0],), generator=gen)
            out = model(x, y, (q + 1).float())
            m = crit(out, x, y, lambdas[q])
            opt.zero_grad(set_to_none=True)
            m["loss"].backward()
            if cfg.get("clip"):
                torch.nn.utils.clip_grad_norm_(main_params, cfg["clip"])
            opt.step()
            aux_opt.zero_grad(set_to_none=True)
            model.aux_loss().backward()
            aux_opt.step()
            step += 1
            bar.update(1)

            run_loss += m["loss"].item()
            run_bpp += m["bpp"].mean().item()
            run_mse += m["mse"].mean().item()
            run_n += 1
            if step % cfg.get("log_every", 25) == 0 or step == total:
                psnr = -10 * math.log10(max(run_mse / run_n, 1e-12))
                metrics = {
                    "step": step,
                    "loss": run_loss / run_n,
                    "bpp": run_bpp / run_n,
                    "psnr": psnr,
                    "lr": lr,
                }
                extra = {}
                if val_pairs and (step % cfg.get("val_every", 500) == 0 or step == total):
                    extra = validate(model, val_pairs, [1.0, float(levels)])
                    metrics.update(extra)
                log.writerow(
                    [
                        step,
                        f"{time.time() - t0:.1f}",
                        f"{metrics['loss']:.5f}",
                        f"{metrics['bpp']:.4f}",
                        f"{psnr:.3f}",
                        f"{lr:.2e}",
                        json.dumps(extra),
                    ]
                )
                log_f.flush()
                bar.set_postfix(
                    loss=f"{metrics['loss']:.3f}", bpp=f"{metrics['bpp']:.3f}", psnr=f"{psnr:.2f}"
                )
                run_loss, run_bpp, run_mse, run_n = 0.0, 0.0, 0.0, 0
            if time.time() - last_ckpt > cfg.get("checkpoint_minutes", 5) * 60:
                save_checkpoint(ckpt_path, model, opt, aux_opt, step, gen, cfg)
                last_ckpt = time.time()
        bar.close()
    save_checkpoint(ckpt_path, model, opt, aux_opt, step, gen, cfg)
    metrics["step"] = step
    return metrics


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x


def export(
    checkpoint: str | Path, out_dir: str | Path, name: str | None = None, fp16: bool = True
) -> Path:
    """Write ``<name>.safetensors`` + ``<name>.json`` (config) from a training checkpoint.

    Entropy-coder tables are computed here (``update``) and shipped, so every machine decodes
    with the same CDFs. Floating weights are stored as fp16 when ``fp16`` (tables stay int32).
    """
    from safetensors.torch import save

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    cfg = state["config"]
    model = build(cfg["model"], **cfg.get("model_config", {}))
    model.load_state_dict(state["model"])
    if fp16:  # round-trip through fp16 *before* building the CDF tables, so they match
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.half().float())
    model.update(force=True)
    tensors = {
        k: (v.half() if fp16 and v.is_floating_point() else v).contiguous()
        for k, v in model.state_dict().items()
    }
    name = name or cfg["model"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.safetensors"
    with atomic_open(path) as f:
        f.write(save(tensors, metadata={"model": cfg["model"], "step": str(state["step"])}))
    meta = {
        "model": cfg["model"],
        "config": model.config,
        "step": state["step"],
        "lambdas": cfg["lambdas"],
        "distortion": cfg.get("distortion", "mse"),
    }
    with atomic_open(out_dir / f"{name}.json") as f:
        f.write(json.dumps(meta, indent=2).encode())
    return path


if __name__ == "__main__":  # pragma: no cover - convenience for `python -m wzcodec.train CFG OUT`
    import sys

    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count()))
    print(train(sys.argv[1], sys.argv[2], resume="--resume" in sys.argv))
