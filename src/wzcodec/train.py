"""``wz train``: variable-rate training with exact resume (``wz export``: ``weights.py``).

    YAML config ──► PairDataset(train specs, TrainTransform) ──► batches (own RNG, resumable)
                ──► model(x, y, q) ──► RateDistortionLoss(λ[q]) ──► Adam (+ aux Adam for EB)
                ──► CSV log, validation (true y vs zero y), atomic checkpoints every few minutes

Each sample of a batch draws its own quality level q and is weighted by that level's λ, so one
run trains every rate point. The batch stream is drawn from a checkpointed generator, so
``--resume`` continues with exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from wzcodec.data import PairDataset, TrainTransform, from_spec
from wzcodec.data.protocols import PROTOCOLS
from wzcodec.errors import WzError
from wzcodec.files import atomic_open
from wzcodec.models import MODELS, build
from wzcodec.models.compiled import compile_transforms
from wzcodec.models.loss import RateDistortionLoss
from wzcodec.weights import load_weights

CHECKPOINT = "checkpoint.pt"


def numbers(value):
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; turn such strings into floats."""
    if isinstance(value, dict):
        return {k: numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [numbers(v) for v in value]
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


CONFIG_KEYS = frozenset(
    [
        "model",
        "model_config",
        "init_from",
        "data",
        "crop",
        "batch",
        "distortion",
        "lambdas",
        "alpha",
        "beta",
        "lr",
        "lr_warmup",
        "lr_drop_at",
        "lr_drop_after_minutes",
        "lr_mult",
        "side_lr_mult",
        "freeze",
        "freeze_input_channels",
        "side_curriculum",
        "coarse_latent",
        "match_loss",
        "aux_lr",
        "clip",
        "steps",
        "bf16",
        "compile",
        "device",
        "seed",
        "train_protocol",
        "val_protocol",
        "val_every",
        "log_every",
        "checkpoint_minutes",
        "checkpoint_every_steps",
    ]
)
DATA_KEYS = frozenset({"train", "val", "val_count", "val_split"})


def load_config(path: str | Path) -> dict:
    with open(path) as f:
        return numbers(yaml.safe_load(f))


def check_config(cfg: dict) -> None:
    """A misspelt key would otherwise be ignored in silence (a learning-rate drop that never
    comes): refuse unknown keys, and the required ones missing, before anything runs."""
    if cfg.get("model") in MODELS and not MODELS[cfg["model"]].entropy_coded:
        from wzcodec import train_refiner  # a receiver over a standard codec: its own keys

        return train_refiner.check_config(cfg)
    unknown = sorted(set(cfg) - CONFIG_KEYS) + sorted(
        f"data.{k}" for k in set(cfg.get("data") or {}) - DATA_KEYS
    )
    if unknown:
        raise WzError(f"unknown config key(s): {', '.join(unknown)}")
    missing = [k for k in ("model", "data", "lambdas", "batch", "lr", "steps") if k not in cfg]
    if "data" in cfg and "train" not in (cfg["data"] or {}):
        missing.append("data.train")
    if missing:
        raise WzError(f"config lacks required key(s): {', '.join(missing)}")


def _specs(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _rng_state(gen: torch.Generator) -> dict:
    return {
        "torch": torch.get_rng_state(),
        "gen": gen.get_state(),
        "python": random.getstate(),
    }


def save_checkpoint(
    path: Path, model, opt, aux_opt, step: int, rngs: list[dict], cfg: dict, elapsed: float
) -> None:
    """Model, optimizers, step, wall time and every rank's RNG states, written atomically."""
    state = {
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "aux_opt": aux_opt.state_dict() if aux_opt is not None else {},
        "step": step,
        "elapsed": elapsed,
        "rng": rngs,
        "config": cfg,
    }
    with atomic_open(path) as f:
        torch.save(state, f)


# parameters a config option adds to a model (``window`` adds ``col_bias``): a warm start from
# the same model without the option keeps their initial value and trains them as new ones
NEW_PARAMETERS = {"col_bias"}


def init_model(model: torch.nn.Module, cfg: dict) -> set[str]:
    """Warm start from ``init_from``: a trained ``hyperprior`` (mapped by the model's
    ``load_hyperprior``) or weights of the same model. Returns the parameter names loaded."""
    if not cfg.get("init_from"):
        return set()
    state = load_weights(cfg["init_from"])
    if hasattr(model, "load_hyperprior") and any(k.startswith("g_a.") for k in state):
        return model.load_hyperprior(state)
    missing, unexpected = model.load_state_dict(state, strict=False)
    new = [k for k in missing if k.rsplit(".", 1)[-1] in NEW_PARAMETERS]
    if unexpected or len(new) != len(missing):
        model.load_state_dict(state)  # raises, naming what does not match
    return {n for n, _ in model.named_parameters() if n not in new}


def freeze_input_channels(model: torch.nn.Module, spec: dict[str, int]) -> None:
    """Keep the first ``n`` input channels of each named convolution weight as they are
    (``{name: n}``; the rest trains): their gradient is zeroed, so Adam never moves them. With
    a grafted ``atn`` this trains only the weights that read y while D_x's x path stays the
    hyperprior's, like ControlNet's zero convolutions."""
    params = dict(model.named_parameters())
    convs = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    for name, n in spec.items():
        module = model.get_submodule(name.rsplit(".", 1)[0]) if name in params else None
        if not name.endswith(".weight") or not isinstance(module, convs):
            raise WzError(f"freeze_input_channels: {name} is not a convolution weight")
        dim = 0 if isinstance(module, torch.nn.ConvTranspose2d) else 1  # its weight: (in, out, ..)
        mask = torch.ones_like(params[name])
        mask.narrow(dim, 0, int(n)).zero_()
        params[name].register_hook(lambda g, mask=mask: g * mask)


def param_groups(model: torch.nn.Module, cfg: dict, warm: set[str]):
    """Main-optimizer groups (warm-started parameters at lr, new ones at lr x side_lr_mult;
    ``lr_mult: {prefix: m}`` sets lr x m for the names starting with prefix, the longest
    prefix winning; names starting with a ``freeze`` prefix are not trained, nor the input
    channels named by ``freeze_input_channels``) and the aux parameters."""
    freeze_input_channels(model, cfg.get("freeze_input_channels") or {})
    frozen = tuple(cfg.get("freeze", []))
    by_prefix = cfg.get("lr_mult") or {}
    names = {n for n, _ in model.named_parameters()}
    for prefix in by_prefix:
        if not any(n.startswith(prefix) for n in names):
            raise WzError(f"lr_mult: no parameter name starts with {prefix!r}")
    groups: dict[float, list] = {}
    aux = []
    for n, p in model.named_parameters():
        if frozen and n.startswith(frozen):
            p.requires_grad_(False)
        elif n.endswith(".quantiles"):
            aux.append(p)
        else:
            mult = 1.0 if (not warm or n in warm) else float(cfg.get("side_lr_mult", 1.0))
            hits = [k for k in by_prefix if n.startswith(k)]
            if hits:
                mult = float(by_prefix[max(hits, key=len)])
            groups.setdefault(mult, []).append(p)
    main = [{"params": ps, "lr_mult": m} for m, ps in groups.items()]
    return main, aux


class Batches:
    """Random training batches drawn with a dedicated, checkpointable generator."""

    def __init__(self, dataset: PairDataset, batch: int, gen: torch.Generator, device: str = "cpu"):
        self.ds, self.batch, self.gen, self.device = dataset, batch, gen, torch.device(device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(self.ds), (self.batch,), generator=self.gen).tolist()
        seeds = torch.randint(2**31 - 1, (self.batch,), generator=self.gen).tolist()
        items = [self.ds.sample(i, random.Random(s)) for i, s in zip(idx, seeds, strict=True)]
        x, y = (torch.stack(t) for t in zip(*items, strict=True))
        if self.device.type == "cuda":  # the copy overlaps the previous step's kernels
            x, y = (t.pin_memory().to(self.device, non_blocking=True) for t in (x, y))
        cl = torch.channels_last
        return x.contiguous(memory_format=cl), y.contiguous(memory_format=cl)


def _relit_roll(img: torch.Tensor, shifts, dims, draw: torch.Tensor) -> torch.Tensor:
    """``img`` rolled by ``shifts`` along ``dims`` with a gain 0.85..1.15 and an offset
    ±12/255 taken from two uniform draws, clamped to [0, 1]."""
    gain, offset = 0.85 + 0.3 * draw[0].item(), (draw[1].item() - 0.5) * 24 / 255
    return (img.roll(shifts, dims=dims) * gain + offset).clamp(0, 1)


def easy_side(
    x: torch.Tensor, y: torch.Tensor, p: float, max_shift: int, gen: torch.Generator
) -> torch.Tensor:
    """The side-image curriculum (``side_curriculum`` in a config, ../shared/PILOT.md): each
    sample's y becomes, with probability p, x itself shifted horizontally by up to
    ``max_shift`` pixels (wrapping round) with a random gain (0.85..1.15) and offset (±12/255),
    so a decoder can learn to read y before it has to find matches."""
    n = x.shape[0]
    draw = torch.rand(n, 3, generator=gen)
    shifts = torch.randint(-max_shift, max_shift + 1, (n,), generator=gen).tolist()
    out = y.clone()
    for i in range(n):
        if draw[i, 0] < p:
            out[i] = _relit_roll(x[i], shifts[i], -1, draw[i, 1:])
    return out.contiguous(memory_format=torch.channels_last)


def shifted_copies(
    x: torch.Tensor, max_shift: int, gen: torch.Generator, token: int = 8
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Side images with known correspondences for the matching loss (``match_loss``): each
    sample's y is x rolled by a whole number of ``token``-pixel tokens, horizontally up to
    ``max_shift`` pixels and vertically by -1, 0 or +1 token, with a random gain (0.85..1.15)
    and offset (±12/255). Returns (y, dk, dr): x's token (r, c) is y's (r + dr, c + dk)."""
    n = x.shape[0]
    dk = torch.randint(-(max_shift // token), max_shift // token + 1, (n,), generator=gen)
    dr = torch.randint(-1, 2, (n,), generator=gen)
    draw = torch.rand(n, 2, generator=gen)
    y = torch.empty_like(x)
    for i in range(n):
        y[i] = _relit_roll(x[i], (token * int(dr[i]), token * int(dk[i])), (-2, -1), draw[i])
    return y.contiguous(memory_format=torch.channels_last), dk, dr


def match_side(model, x: torch.Tensor, q: torch.Tensor, spec: dict, gen: torch.Generator):
    """The matching loss: the mean over the CAMs of their attention's cross-entropy against
    the true correspondences of shifted copies of x (``shifted_copies``). It trains only the
    CAMs' queries, keys and position terms, which the rate-distortion loss alone lets drift
    away from matching (measured: the shipped atn's finest CAM found the right place for
    under 1% of tokens even with y = x)."""
    y, dk, dr = shifted_copies(x, int(spec.get("max_shift", 64)), gen)
    feats = model.cam_inputs(x, y, q)
    pairs = zip(model.cams, feats, strict=True)
    losses = [cam.match_loss(fx, fy, dk, dr) for cam, (fx, fy) in pairs]
    return torch.stack(losses).mean()


def _psnr(mse: float) -> float:
    return -10 * math.log10(max(mse, 1e-12))


@torch.no_grad()
def validate(model, pairs: list[tuple[torch.Tensor, torch.Tensor]], levels: list[float]) -> dict:
    """Mean estimated bpp and PSNR at the given levels. Side-information models also report
    PSNR with an unrelated y (another pair's) and with y = 0: a gap near zero means the side
    path is dead (see ../shared/PILOT.md)."""
    model.eval()
    res: dict[str, float] = {}
    crit = RateDistortionLoss()
    dev = next(model.parameters()).device
    zero = torch.zeros(1, device=dev)
    pairs = [(x.to(dev), y.to(dev)) for x, y in pairs]
    for q in levels:
        bpp, true_y, other_y, zero_y = [], [], [], []
        for i, (x, y) in enumerate(pairs):
            m = crit(model(x, y, q), x, y, zero)
            bpp.append(m["bpp"].item())
            true_y.append(_psnr(m["mse"].item()))
            if getattr(model, "uses_side", False):
                other = pairs[(i + 1) % len(pairs)][1]
                other = other if other.shape == y.shape else y.flip(-1).flip(-2)
                other_y.append(_psnr(crit(model(x, other, q), x, y, zero)["mse"].item()))
                zero_y.append(
                    _psnr(crit(model(x, torch.zeros_like(y), q), x, y, zero)["mse"].item())
                )
        res[f"val_bpp_q{q:g}"] = float(np.mean(bpp))
        res[f"val_psnr_q{q:g}"] = float(np.mean(true_y))
        if other_y:
            res[f"val_gap_unrelated_q{q:g}"] = float(np.mean(true_y) - np.mean(other_y))
            res[f"val_gap_zero_q{q:g}"] = float(np.mean(true_y) - np.mean(zero_y))
    model.train()
    return res


def _val_pairs(cfg: dict) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Centre crops (up to 256x512, multiples of 64) of a few evenly spread validation pairs."""
    spec = cfg["data"].get("val")
    if not spec:
        return []
    count = cfg["data"].get("val_count", 4)
    pairs = from_spec(spec, split=cfg["data"].get("val_split", "test"))
    pairs = pairs[:: max(1, len(pairs) // count)][:count]
    ds = PairDataset(pairs, transform=PROTOCOLS[cfg.get("val_protocol", "native")], preload=False)
    out = []
    for i in range(len(ds)):
        x, y = ds.sample(i, random.Random(i))
        h, w = (min(x.shape[1], 256) // 64) * 64, (min(x.shape[2], 512) // 64) * 64
        top, left = (x.shape[1] - h) // 2, (x.shape[2] - w) // 2
        box = (slice(None), slice(top, top + h), slice(left, left + w))
        out.append((x[box][None], y[box][None]))
    return out


class _Dist:
    """torchrun / DistributedDataParallel plumbing (gloo on CPU, NCCL on GPUs); inert alone."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1:
            import torch.distributed as dist

            backend = "nccl" if torch.cuda.is_available() else "gloo"
            dist.init_process_group(backend)
            self.dist = dist

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        # the EB quantiles are trained by the data-independent aux loss, identically on every
        # rank; keep them out of DDP's gradient reduction (the aux backward is outside forward)
        ignore = [n for n, _ in model.named_parameters() if n.endswith(".quantiles")]
        DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(model, ignore)
        return DistributedDataParallel(model, find_unused_parameters=True)

    def gather(self, obj):
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        self.dist.all_gather_object(out, obj)
        return out

    def close(self) -> None:
        if self.world > 1:
            self.dist.destroy_process_group()


def train(
    config_path: str | Path,
    out_dir: str | Path,
    resume: bool = False,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    progress: bool = True,
    overrides: dict | None = None,
) -> dict:
    """Train (or resume) a model; returns the last logged metrics. ``overrides`` replace
    top-level config keys (``wz train --set crop=128``).

    Under ``torchrun --nproc_per_node=N`` each rank draws batch/N samples from its own
    generator; gradients are averaged by DDP; only rank 0 writes logs and checkpoints.
    """
    cfg = {**load_config(config_path), **numbers(overrides or {})}
    if cfg.get("model") in MODELS and not MODELS[cfg["model"]].entropy_coded:
        from wzcodec import train_refiner  # a receiver over a standard codec: its own loop

        return train_refiner.train(cfg, out_dir, resume, max_steps, max_minutes, progress)
    check_config(cfg)
    dist = _Dist()
    out_dir = Path(out_dir)
    seed = cfg.get("seed", 0) + 1000 * dist.rank
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)

    model = build(cfg["model"], **cfg.get("model_config", {}))
    cams = getattr(model, "cams", None) or []
    if cfg.get("match_loss") and not (cams and all(hasattr(c, "match_loss") for c in cams)):
        raise WzError(f"match_loss: {cfg['model']} has no band attention to train")
    crop = cfg.get("crop", 256)
    if any(c % model.factor for c in ([crop, crop] if isinstance(crop, int) else crop)):
        raise ValueError(f"crop {crop} must be a multiple of the model's factor {model.factor}")
    model.bf16 = bool(cfg.get("bf16", False))
    if hasattr(model, "decode_y"):  # ŷ, R_y and R_w only feed the loss's α and β terms
        model.decode_y = bool(cfg.get("alpha", 0.0) or cfg.get("beta", 0.0))
    if cfg.get("coarse_latent"):
        if not hasattr(model, "coarsen"):
            raise WzError(f"coarse_latent: {cfg['model']} has no side path to train")
        model.coarse_latent = dict(cfg["coarse_latent"])
    device = torch.device(cfg.get("device", "cpu"))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop size: pick the fastest kernels once
    warm = init_model(model, cfg)
    model = model.to(device, memory_format=torch.channels_last)
    if cfg.get("compile", False):
        compile_transforms(model)
    groups, aux_params = param_groups(model, cfg, warm)
    main_params = [p for g in groups for p in g["params"]]
    # fused: one kernel per step instead of ~10 per tensor (~4% of a hyperprior step on CPU)
    opt = torch.optim.Adam(groups, lr=cfg["lr"], fused=True)
    aux_lr = cfg.get("aux_lr", 1e-3)
    aux_opt = torch.optim.Adam(aux_params, lr=aux_lr, fused=True) if aux_params else None
    gen = torch.Generator().manual_seed(seed)
    step, elapsed = 0, 0.0

    ckpt_path = out_dir / CHECKPOINT
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        for g, mine in zip(opt.param_groups, groups, strict=True):
            g["lr_mult"] = mine["lr_mult"]  # the config's multipliers win over the saved ones
        if aux_opt is not None:
            aux_opt.load_state_dict(state["aux_opt"])
        step, elapsed = state["step"], state.get("elapsed", 0.0)
    if dist.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        for stale in out_dir.glob(f".{CHECKPOINT}.*.tmp"):  # a kill mid-write left it behind
            stale.unlink(missing_ok=True)
        (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    pairs = [p for spec in _specs(cfg["data"]["train"]) for p in from_spec(spec, split="train")]
    transform = TrainTransform(crop=cfg.get("crop", 256), protocol=cfg.get("train_protocol"))
    batches = Batches(
        PairDataset(pairs, transform=transform), cfg["batch"] // dist.world, gen, str(device)
    )
    val_pairs = _val_pairs(cfg) if dist.main else []
    lambdas = torch.tensor(cfg["lambdas"], dtype=torch.float32, device=device)
    levels = len(lambdas)
    crit = RateDistortionLoss(
        cfg.get("distortion", "mse"), cfg.get("alpha", 0.0), cfg.get("beta", 0.0)
    )
    net = dist.wrap(model)
    curriculum = cfg.get("side_curriculum")
    match = cfg.get("match_loss")
    total = min(cfg["steps"], max_steps) if max_steps else cfg["steps"]
    log = _Log(out_dir, fresh=step == 0, step=step) if dist.main else None

    def checkpoint() -> None:
        rngs = dist.gather(_rng_state(gen))
        if dist.main:
            save_checkpoint(
                ckpt_path, model, opt, aux_opt, step, rngs, cfg, elapsed + time.time() - t0
            )

    if step > 0:  # restore the random streams last, after everything that draws from them
        rng = state["rng"][dist.rank] if isinstance(state["rng"], list) else state["rng"]
        torch.set_rng_state(rng["torch"])
        gen.set_state(rng["gen"])
        random.setstate(_tuplify(rng["python"]))
    t0 = last_ckpt = time.time()
    metrics: dict = {}
    window: list[torch.Tensor] = []  # per step (loss, bpp, mse), read once per log line
    bar = tqdm(
        total=total,
        initial=step,
        disable=not (progress and dist.main),
        dynamic_ncols=True,
        desc=cfg["model"],
    )
    net.train()
    stop = _StopOnSignal()  # SIGINT / SIGTERM: finish the step, checkpoint, return
    try:
        while step < total:
            if max_minutes is not None and time.time() - t0 > max_minutes * 60:
                break
            lr = cfg["lr"] * min(1.0, (step + 1) / max(1, cfg.get("lr_warmup", 0)))
            lr *= 0.1 ** sum(step >= s for s in cfg.get("lr_drop_at", []))
            minutes = (elapsed + time.time() - t0) / 60
            lr *= 0.1 ** sum(minutes >= m for m in cfg.get("lr_drop_after_minutes", []))
            for g in opt.param_groups:
                g["lr"] = lr * g["lr_mult"]
            x, y = batches.next()
            if curriculum and step < curriculum["steps"]:  # p falls linearly from 1 to 0
                p = 1.0 - step / curriculum["steps"]
                y = easy_side(x, y, p, int(curriculum.get("max_shift", 0)), gen)
            q = torch.randint(levels, (x.shape[0],), generator=gen).to(device)
            m = crit(net(x, y, (q + 1).float()), x, y, lambdas[q])
            loss = m["loss"]
            if match:
                m["match"] = match_side(model, x, (q + 1).float(), match, gen)
                loss = loss + float(match.get("weight", 1.0)) * m["match"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.get("clip"):
                torch.nn.utils.clip_grad_norm_(main_params, cfg["clip"])
            opt.step()
            if aux_opt is not None:
                aux_opt.zero_grad(set_to_none=True)
                model.aux_loss().backward()
                aux_opt.step()
            step += 1
            bar.update(1)
            window.append(
                torch.stack(
                    [m["loss"], m["bpp"].mean(), m["mse"].mean(), m.get("match", m["loss"] * 0)]
                ).detach()
            )

            if step % cfg.get("log_every", 25) == 0 or step == total:
                loss, bpp, mse, match_ce = torch.stack(window).float().mean(0).tolist()
                window.clear()
                metrics = {"loss": loss, "bpp": bpp, "psnr": _psnr(mse), "lr": lr}
                if match:
                    metrics["match_loss"] = match_ce
                if (
                    dist.main
                    and val_pairs
                    and (step % cfg.get("val_every", 500) == 0 or step == total)
                ):
                    metrics.update(validate(model, val_pairs, [1.0, float(levels)]))
                if log is not None:
                    log.write(step, elapsed + time.time() - t0, metrics)
                bar.set_postfix(loss=f"{loss:.3f}", bpp=f"{bpp:.3f}", psnr=f"{_psnr(mse):.2f}")
            every = cfg.get("checkpoint_every_steps")
            due = (every and step % every == 0) or time.time() - last_ckpt > cfg.get(
                "checkpoint_minutes", 5
            ) * 60
            if dist.world > 1:  # every rank must agree, since checkpoint() gathers from all of them
                flags = dist.gather((bool(due), stop.requested))
                due, stop.requested = any(f[0] for f in flags), any(f[1] for f in flags)
            if stop.requested:
                break
            if due:
                checkpoint()
                last_ckpt = time.time()
    finally:
        stop.restore()
    bar.close()
    checkpoint()
    if log is not None:
        log.close()
    dist.close()
    return {**metrics, "step": step}


class _StopOnSignal:
    """Turns SIGINT / SIGTERM into a request the training loop honours after the current step
    (so Ctrl-C or a scheduler's kill leaves a fresh checkpoint); a second signal acts as usual."""

    def __init__(self):
        self.requested = False
        self.old: dict = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, self._handle)

    def _handle(self, sig, frame) -> None:
        if self.requested:  # asked twice: behave as if we were not here
            self.restore()
            signal.raise_signal(sig)
            return
        self.requested = True
        print(
            f"\n{signal.Signals(sig).name}: stopping after this step (checkpoint follows)",
            file=sys.stderr,
        )

    def restore(self) -> None:
        for sig, handler in self.old.items():
            signal.signal(sig, handler)
        self.old = {}


class _Log:
    """log.csv (step, time, loss, bpp, psnr, lr, then validation columns as JSON) and, when the
    tensorboard package is installed, TensorBoard event files in the same folder."""

    def __init__(self, out_dir: Path, fresh: bool, step: int = 0):
        path = out_dir / "log.csv"
        new = fresh or not path.exists()
        if not new:  # resuming: forget rows logged after the checkpoint (they will be redone)
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
            keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
            buf = io.StringIO()
            csv.writer(buf).writerows(keep)
            with atomic_open(path) as f:
                f.write(buf.getvalue().encode())
        self.f = open(path, "w" if new else "a", newline="")  # noqa: SIM115 (closed in close())
        self.csv = csv.writer(self.f)
        if new:
            self.csv.writerow(["step", "time", "loss", "bpp", "psnr", "lr", "val"])
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out_dir / "tb"))
        except ImportError:
            self.tb = None

    def write(self, step: int, seconds: float, metrics: dict) -> None:
        val = {k: v for k, v in metrics.items() if k.startswith("val_") or k == "match_loss"}
        m = metrics
        row = [step, f"{seconds:.1f}", f"{m['loss']:.5f}", f"{m['bpp']:.4f}", f"{m['psnr']:.3f}"]
        self.csv.writerow([*row, f"{m['lr']:.2e}", json.dumps(val)])
        self.f.flush()
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.add_scalar(k if k.startswith("val_") else f"train/{k}", v, step)
            self.tb.flush()

    def close(self) -> None:
        self.f.close()
        if self.tb is not None:
            self.tb.close()


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x


if __name__ == "__main__":  # pragma: no cover - convenience for `python -m wzcodec.train CFG OUT`
    import sys

    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count()))
    print(train(sys.argv[1], sys.argv[2], resume="--resume" in sys.argv))
