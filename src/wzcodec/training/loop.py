"""``wz train``: the training loop of an end-to-end model, with exact resume.

    config ──► prepare: model, Adam (+ aux Adam for the entropy bottleneck) ──► batches
           ──► each step: model(x, y, q) ──► RateDistortionLoss(λ[q]) ──► optimizer steps
           ──► log.csv every ``log_every`` steps, validation every ``val_every``,
               atomic checkpoints every ``checkpoint_minutes``, and at the end or on a signal

Each sample of a batch draws its own quality level q and is weighted by that level's λ, so one
run trains every rate point. Under ``torchrun --nproc_per_node=N`` each rank draws batch/N
samples from its own generator, DDP averages the gradients, and only rank 0 writes.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
import yaml

from wzcodec.models.loss import RateDistortionLoss
from wzcodec.training import refiner
from wzcodec.training.checkpoint import (
    CHECKPOINT,
    load_checkpoint,
    remove_stale,
    restore_rng,
)
from wzcodec.training.config import (
    check_config,
    is_refiner,
    load_config,
    numbers,
    resolve,
)
from wzcodec.training.data import easy_side, match_side, train_batches, val_pairs
from wzcodec.training.distributed import Dist
from wzcodec.training.params import prepare
from wzcodec.training.steps import Steps
from wzcodec.training.validate import psnr, validate


def train(
    config_path: str | Path,
    out_dir: str | Path,
    resume: bool = False,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    progress: bool = True,
    overrides: dict | None = None,
) -> dict:
    """Train (or resume) the model of a config; returns the last logged metrics. ``overrides``
    replace top-level config keys (``wz train --set crop=128``). A receiver over a standard
    codec (``avif-si``, ...) trains with its own step (``refiner.py``, ``flow.py``); all three
    run in the one loop of ``steps.py``."""
    cfg = {**load_config(config_path), **numbers(overrides or {})}
    check_config(cfg)
    cfg = resolve(cfg)
    trainer = end_to_end
    if is_refiner(cfg):  # a receiver: the flow receiver's trainer, or the match receiver's
        from wzcodec.training import flow

        trainer = flow.train if cfg["model_config"].get("align") == "flow" else refiner.train
    return trainer(cfg, out_dir, resume, max_steps, max_minutes, progress)


def end_to_end(
    cfg: dict,
    out_dir: str | Path,
    resume: bool = False,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume) an end-to-end model; ``cfg`` is a checked, resolved config."""
    dist, out_dir = Dist(), Path(out_dir)
    seed = cfg["seed"] + 1000 * dist.rank
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    device = torch.device(cfg["device"])
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # a fixed crop size: pick the fastest kernels once
    model, opt, aux_opt, main_params = prepare(cfg, device)
    gen = torch.Generator().manual_seed(seed)
    ckpt_path, state = out_dir / CHECKPOINT, None
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, model, opt, aux_opt)
    if dist.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale(out_dir)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    batches = train_batches(cfg, gen, cfg["batch"] // dist.world, str(device))
    run = _Step(cfg, model, dist.wrap(model), opt, aux_opt, main_params, gen, device)
    val = val_pairs(cfg) if dist.main else []
    total = min(cfg["steps"], max_steps) if max_steps else cfg["steps"]
    if state:  # the random streams last, after everything that draws from them
        restore_rng(state["rng"], dist.rank, gen=gen)

    steps = Steps(model, opt, cfg, out_dir, state, gen=gen, aux_opt=aux_opt, dist=dist)
    levels = [1.0, float(len(cfg["lambdas"]))]
    steps.run(
        lambda i, lr: run(batches.next(), i, lr),
        run.metrics,
        (lambda: validate(model, val, levels)) if val else None,
        total,
        max_minutes,
        progress,
    )
    dist.close()
    return {**steps.metrics, "step": steps.step}


class _Step:
    """One optimizer step on a batch; keeps each step's (loss, bpp, mse, match) for the log."""

    def __init__(self, cfg, model, net, opt, aux_opt, main_params, gen, device):
        self.cfg, self.model, self.net, self.opt, self.aux_opt = cfg, model, net, opt, aux_opt
        self.main_params, self.gen = main_params, gen
        self.lambdas = torch.tensor(cfg["lambdas"], dtype=torch.float32, device=device)
        self.crit = RateDistortionLoss(cfg["distortion"], cfg["alpha"], cfg["beta"])
        self.window: list[torch.Tensor] = []  # read once per log line (no per-step sync)
        net.train()

    def __call__(self, batch: tuple[torch.Tensor, torch.Tensor], step: int, lr: float) -> None:
        cfg, x, y = self.cfg, *batch
        for g in self.opt.param_groups:
            g["lr"] = lr * g["lr_mult"]
        curriculum, match = cfg["side_curriculum"], cfg["match_loss"]
        if curriculum and step < curriculum["steps"]:  # p falls linearly from 1 to 0
            p = 1.0 - step / curriculum["steps"]
            y = easy_side(x, y, p, int(curriculum["max_shift"]), self.gen)
        q = torch.randint(len(self.lambdas), (x.shape[0],), generator=self.gen)
        q = q.to(self.lambdas.device)
        m = self.crit(self.net(x, y, (q + 1).float()), x, y, self.lambdas[q])
        loss = m["loss"]
        if match:
            m["match"] = match_side(self.model, x, (q + 1).float(), match, self.gen)
            loss = loss + float(match["weight"]) * m["match"]
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg["clip"]:
            torch.nn.utils.clip_grad_norm_(self.main_params, cfg["clip"])
        self.opt.step()
        if self.aux_opt is not None:
            self.aux_opt.zero_grad(set_to_none=True)
            self.model.aux_loss().backward()
            self.aux_opt.step()
        parts = [m["loss"], m["bpp"].mean(), m["mse"].mean(), m.get("match", m["loss"] * 0)]
        self.window.append(torch.stack(parts).detach())

    def metrics(self, lr: float) -> dict:
        """Means over the steps since the last call."""
        loss, bpp, mse, match_ce = torch.stack(self.window).float().mean(0).tolist()
        self.window.clear()
        out = {"loss": loss, "bpp": bpp, "psnr": psnr(mse), "lr": lr}
        if self.cfg["match_loss"]:
            out["match_loss"] = match_ce
        return out
