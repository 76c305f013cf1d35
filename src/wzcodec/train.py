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
        "aux_opt": aux_opt.state_dict() if aux_opt is not None else {},
        "step": step,
        "rng": _rng_state(gen),
        "config": cfg,
    }
    with atomic_open(path) as f:
        torch.save(state, f)


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from shipped weights (.safetensors) or a training checkpoint (.pt)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return {k: v.float() if v.is_floating_point() else v for k, v in load_file(path).items()}
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def init_model(model: torch.nn.Module, cfg: dict) -> set[str]:
    """Warm start from ``init_from``: a trained ``hyperprior`` (mapped by the model's
    ``load_hyperprior``) or weights of the same model. Returns the parameter names loaded."""
    if not cfg.get("init_from"):
        return set()
    state = load_weights(cfg["init_from"])
    if hasattr(model, "load_hyperprior") and any(k.startswith("g_a.") for k in state):
        return model.load_hyperprior(state)
    model.load_state_dict(state)
    return {n for n, _ in model.named_parameters()}


def param_groups(model: torch.nn.Module, cfg: dict, warm: set[str]):
    """Main-optimizer groups (warm-started parameters at lr, new ones at lr x side_lr_mult;
    names starting with a ``freeze`` prefix are not trained) and the aux parameters."""
    frozen = tuple(cfg.get("freeze", []))
    groups: dict[float, list] = {}
    aux = []
    for n, p in model.named_parameters():
        if frozen and n.startswith(frozen):
            p.requires_grad_(False)
        elif n.endswith(".quantiles"):
            aux.append(p)
        else:
            mult = 1.0 if (not warm or n in warm) else float(cfg.get("side_lr_mult", 1.0))
            groups.setdefault(mult, []).append(p)
    main = [{"params": ps, "lr_mult": m} for m, ps in groups.items()]
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
    warm = init_model(model, cfg)
    groups, aux_params = param_groups(model, cfg, warm)
    main_params = [p for g in groups for p in g["params"]]
    opt = torch.optim.Adam(groups, lr=cfg["lr"])
    aux_opt = torch.optim.Adam(aux_params, lr=cfg.get("aux_lr", 1e-3)) if aux_params else None
    gen = torch.Generator().manual_seed(cfg.get("seed", 0))
    step = 0

    ckpt_path = out_dir / CHECKPOINT
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if aux_opt is not None:
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
                g["lr"] = lr * g["lr_mult"]
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
            if aux_opt is not None:
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


def save_weights(model: torch.nn.Module, out_dir: str | Path, name: str, meta: dict | None = None,
                 fp16: bool = True) -> Path:  # fmt: skip
    """Write ``<name>.safetensors`` + ``<name>.json`` (model name and config) atomically.

    Entropy-coder tables are computed here (``update``) and shipped, so every machine decodes
    with the same CDFs. Parameters are stored as fp16 when ``fp16`` (rounded *before* the tables
    are built, so tables and weights agree); buffers and tables keep their dtype.
    """
    from safetensors.torch import save

    params = {n for n, _ in model.named_parameters()}
    if fp16:
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.half().float())
    model.update(force=True)
    tensors = {
        k: (v.half() if fp16 and k in params else v).contiguous()
        for k, v in model.state_dict().items()
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.safetensors"
    with atomic_open(path) as f:
        f.write(save(tensors, metadata={"model": model.model_name}))
    meta = {"model": model.model_name, "config": model.config, **(meta or {})}
    with atomic_open(out_dir / f"{name}.json") as f:
        f.write(json.dumps(meta, indent=2).encode())
    return path


def export(
    checkpoint: str | Path, out_dir: str | Path, name: str | None = None, fp16: bool = True
) -> Path:
    """Shipping weights from a training checkpoint (see ``save_weights``)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    cfg = state["config"]
    model = build(cfg["model"], **cfg.get("model_config", {}))
    model.load_state_dict(state["model"])
    meta = {
        "step": state["step"],
        "lambdas": cfg["lambdas"],
        "distortion": cfg.get("distortion", "mse"),
    }
    return save_weights(model, out_dir, name or cfg["model"], meta, fp16)


if __name__ == "__main__":  # pragma: no cover - convenience for `python -m wzcodec.train CFG OUT`
    import sys

    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count()))
    print(train(sys.argv[1], sys.argv[2], resume="--resume" in sys.argv))
