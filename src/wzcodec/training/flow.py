"""``wz train`` for the flow receiver (``align: flow``; ``wzcodec.receiver``).

    train pairs (x, y), both directions ──► every x (and y) through every base at every
        quality, once ──► base-decode cache (PNG + file size)          (base_decodes.precompute)
    per pair, ``aligned_per_pair`` (base, quality, y kind) draws ──► y aligned onto x̂ by DIS
        flow, with its confidence, once ──► aligned cache (.npy, uint8)            (here)
    each step: random draws, a crop at one place of x, x̂, y_w, conf; the file's bpp
        ──► r = FusionUNet(x̂, y_w, conf, bpp) ──► loss = 10·log10(MSE(x, x̂ + r) / MSE(x, x̂))

The y kind is the true other image, or (with probability ``decoded_y_p``) that image decoded
from the same base and quality: what a rig's receiver holds when every camera sends. With
probability ``unrelated_p`` a sample's y_w and conf come from another pair (the net must
learn to leave x̂ alone when y does not fit it). Every ``val_hold``-th pair is held out of
training (both directions) for validation: the PSNR gain over x̂ with the true y, an
unrelated y and no y, at each base's lowest, middle and highest quality, logged with the wall
time (``log.csv``: the training curve). The alignment is precomputed: training costs only the
net, and the flows are the ones the receiver computes at decode time.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from wzcodec.data import from_spec
from wzcodec.errors import WzError
from wzcodec.models import build
from wzcodec.receiver.align import align
from wzcodec.receiver.receiver import aligned_tensors
from wzcodec.training.base_decodes import (
    cache_path,
    load_image,
    pad_to_crop,
    precompute,
    size_path,
    to_chw,
)
from wzcodec.training.checkpoint import (
    CHECKPOINT,
    load_checkpoint,
    restore_rng,
)
from wzcodec.training.gate import serve_and_calibrate
from wzcodec.training.refiner import EPS, with_bases
from wzcodec.training.steps import GainWindow, Steps
from wzcodec.training.validate import psnr
from wzcodec.weights import load_weights

Draw = tuple[Path, Path, str, int, bool]  # x, y, base, quality, y decoded


def _key(*parts) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


def _aligned_path(cache: Path, d: Draw) -> Path:
    x, y, base, q, dec = d
    return cache / base / f"q{q}" / f"{x.stem}-{_key(x.resolve(), y.resolve(), dec)}.npy"


def _side(d: Draw, dec_cache: Path) -> np.ndarray:
    _, y, base, q, dec = d
    img = load_image(cache_path(dec_cache, base, q, y)) if dec else load_image(y)
    return np.repeat(img[..., None], 3, 2) if img.ndim == 2 else img


def _align_one(job: tuple[Draw, str, str, str]) -> None:
    import cv2

    cv2.setNumThreads(1)
    d, dec_cache, out, preset = job
    x_hat = load_image(cache_path(Path(dec_cache), d[2], d[3], d[0]))
    x_hat = np.repeat(x_hat[..., None], 3, 2) if x_hat.ndim == 2 else x_hat
    a = align(x_hat, _side(d, Path(dec_cache)), preset)
    y = a.y[..., :1] if np.array_equal(a.y[..., 0], a.y[..., 2]) else a.y  # gray: one plane
    arr = np.concatenate([y, a.conf], 2).__mul__(255).round().astype(np.uint8)
    out = Path(out)
    tmp = out.with_suffix(".tmp.npy")
    np.save(tmp, arr)
    tmp.replace(out)


def _draws(pairs: list[tuple[Path, Path]], cfg: dict) -> list[Draw]:
    """``aligned_per_pair`` (base, quality, y kind) per pair, fixed by the pair and the seed."""
    combos = [(b, q) for b, qs in cfg["qualities"].items() for q in qs]
    out = []
    for x, y in pairs:
        rng = random.Random(_key(x.name, y.name, cfg["seed"]))
        for b, q in rng.sample(combos, min(len(combos), cfg["aligned_per_pair"])):
            out.append((x, y, b, q, rng.random() < cfg["decoded_y_p"]))
    return out


class FlowData:
    """The draws with x, x̂ in memory and y_w, conf memory-mapped; ``sample`` cuts a crop."""

    def __init__(self, draws: list[Draw], dec_cache: Path, al_cache: Path, crop):
        self.crop = crop
        self.draws = draws
        self.x: dict[Path, np.ndarray] = {}
        self.x_hat, self.aligned, self.bpp = [], [], []
        for d in draws:
            x, _, base, q, _ = d
            if x not in self.x:
                self.x[x] = load_image(x)
            dec = cache_path(dec_cache, base, q, x)
            self.x_hat.append(load_image(dec))
            h, w = self.x[x].shape[:2]
            self.bpp.append(8 * int(size_path(dec).read_text()) / (h * w))
            self.aligned.append(np.load(_aligned_path(al_cache, d), mmap_mode="r"))

    def sample(self, rng: random.Random, unrelated_p: float):
        i = rng.randrange(len(self.draws))
        x, x_hat = self.x[self.draws[i][0]], self.x_hat[i]
        h, w = x.shape[:2]
        ch, cw = min(self.crop[0], h), min(self.crop[1], w)
        j = i
        if rng.random() < unrelated_p:
            j = rng.randrange(len(self.draws))
            while self.draws[j][0] == self.draws[i][0] and len(self.x) > 1:
                j = rng.randrange(len(self.draws))
        al = self.aligned[j]
        ch, cw = min(ch, al.shape[0]), min(cw, al.shape[1])
        top, left = rng.randint(0, h - ch), rng.randint(0, w - cw)
        atop, aleft = min(top, al.shape[0] - ch), min(left, al.shape[1] - cw)
        a = torch.from_numpy(np.array(al[atop : atop + ch, aleft : aleft + cw])).float() / 255
        a = a.permute(2, 0, 1)
        y_w = a[:-3].expand(3, -1, -1) if a.shape[0] == 4 else a[:-3]
        out = [
            to_chw(x[top : top + ch, left : left + cw]),
            to_chw(x_hat[top : top + ch, left : left + cw]),
            y_w,
            a[-3:],
        ]
        out = [pad_to_crop(t, *self.crop) for t in out]
        if rng.random() < 0.5:  # a joint mirror
            out = [t.flip(-1) for t in out]
        return (*out, self.bpp[i])


def split_pairs(cfg: dict) -> tuple[list, list]:
    """(train pairs both directions, held-out pairs) of the real pairs (photos left out)."""
    real = []
    for spec in cfg["data"]["train"]:
        real += [(p.x, p.y) for p in from_spec(spec, split="train") if p.y is not None]
    n = int(cfg["val_hold"])
    held = real[::n] if n else []
    gone = {p for pair in held for p in pair}
    train = [p for p in real if p[0] not in gone and p[1] not in gone]
    if cfg["both_directions"]:
        train += [(y, x) for x, y in train]
    if not train:
        raise WzError("no training pairs")
    return train, held


def _val_set(held: list, cfg: dict, dec_cache: Path) -> list:
    """Per held-out pair and (base, quality): x, x̂, bpp, and y aligned (true, unrelated)."""
    out = []
    for i, (x_path, y_path) in enumerate(held):
        x = load_image(x_path)
        other = held[(i + 1) % len(held)][1]
        for base, qs in cfg["qualities"].items():
            for q in sorted({qs[0], qs[len(qs) // 2], qs[-1]}):
                dec = cache_path(dec_cache, base, q, x_path)
                x_hat = load_image(dec)
                bpp = 8 * int(size_path(dec).read_text()) / (x.shape[0] * x.shape[1])
                xh3 = np.repeat(x_hat[..., None], 3, 2) if x_hat.ndim == 2 else x_hat
                sides = {}
                for kind, path in (("true", y_path), ("other", other)):
                    y = load_image(path)
                    y = np.repeat(y[..., None], 3, 2) if y.ndim == 2 else y
                    if y.shape != xh3.shape:  # another size: a flipped true y stands in
                        y = load_image(y_path)[::-1, ::-1]
                        y = np.repeat(y[..., None], 3, 2) if y.ndim == 2 else y
                    sides[kind] = aligned_tensors(align(xh3, np.ascontiguousarray(y)))
                out.append((base, q, to_chw(x)[None], to_chw(x_hat)[None], bpp, sides))
    return out


@torch.no_grad()
def validate(model, val: list) -> dict:
    """Mean PSNR gain over x̂ (ungated) with the true y, an unrelated y and none: over all,
    per base, and per base and quality (dB)."""
    model.eval()
    rec = model.receiver
    acc: dict[str, list[float]] = {}
    for base, q, x, x_hat, bpp, sides in val:
        base_psnr = psnr(((x_hat - x) ** 2).mean().item())
        bpp_t = torch.tensor([bpp])
        cases = {k: v for k, v in sides.items()} if rec.use_side else {}
        cases["none"] = rec.align(x_hat, None)
        for kind, (y_w, conf) in cases.items():
            out = (x_hat + rec.residual(x_hat, y_w, conf, bpp_t)).clamp(0, 1)
            gain = psnr(((out - x) ** 2).mean().item()) - base_psnr
            acc.setdefault(f"val_gain_{kind}_{base}", []).append(gain)
            acc.setdefault(f"val_gain_{kind}_{base}_q{q}", []).append(gain)
            acc.setdefault(f"val_gain_{kind}", []).append(gain)
    model.train()
    return {k: float(np.mean(v)) for k, v in acc.items()}


def prepare(cfg: dict, preset: str) -> tuple[list, list, FlowData]:
    """Base decodes and alignments (DIS ``preset``) cached; returns (train pairs, held-out
    pairs, data)."""
    train, held = split_pairs(cfg)
    dec_cache, al_cache = Path(cfg["cache"]), Path(cfg["aligned_cache"])
    images = sorted({p for pair in train for p in pair} | {p for pair in held for p in pair})
    precompute(images, cfg["qualities"], dec_cache, int(cfg["workers"]))
    draws = _draws(train, cfg)
    jobs = [
        (d, str(dec_cache), str(_aligned_path(al_cache, d)), preset)
        for d in draws
        if not _aligned_path(al_cache, d).exists()
    ]
    for j in jobs:
        Path(j[2]).parent.mkdir(parents=True, exist_ok=True)
    workers = int(cfg["workers"])
    if workers <= 1:
        for j in tqdm(jobs, desc="alignments", disable=not jobs):
            _align_one(j)
    elif jobs:  # spawned: a forked child of a process that ran OpenCV's threads can hang
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, ctx) as ex:
            list(tqdm(ex.map(_align_one, jobs, chunksize=4), total=len(jobs), desc="alignments"))
    crop = cfg["crop"]
    crop = (crop, crop) if isinstance(crop, int) else tuple(crop)
    return train, held, FlowData(draws, dec_cache, al_cache, crop)


def _step(model, opt, data: FlowData, rng: random.Random, cfg: dict, lr: float) -> float:
    for g in opt.param_groups:
        g["lr"] = lr
    items = [data.sample(rng, float(cfg["unrelated_p"])) for _ in range(cfg["batch"])]
    x, x_hat, y_w, conf = (
        torch.stack(t).contiguous(memory_format=torch.channels_last)
        for t in list(zip(*items, strict=True))[:4]
    )
    bpp = torch.tensor([it[4] for it in items], dtype=torch.float32)
    if not model.receiver.use_side:  # the post-filter ablation: x̂ in place of y
        y_w, conf = model.receiver.align(x_hat, None)
    out = x_hat + model.receiver.residual(x_hat, y_w, conf, bpp)
    mse = ((out - x) ** 2).flatten(1).mean(1) + EPS
    base = ((x_hat - x) ** 2).flatten(1).mean(1) + EPS
    loss = (10 * torch.log10(mse / base)).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg["clip"]:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
    opt.step()
    return loss.item()


def train(
    cfg: dict,
    out_dir: str | Path,
    resume: bool = False,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume) a flow receiver; ``cfg`` is a checked, resolved config."""
    cfg = with_bases(cfg)
    out_dir = Path(out_dir)
    torch.manual_seed(cfg["seed"])
    rng = random.Random(cfg["seed"])
    model = build(cfg["model"], **cfg["model_config"])
    model.receiver.bf16 = bool(cfg["bf16"])
    model = model.to(memory_format=torch.channels_last)
    if cfg["init"] is not None:  # a warm start from saved weights (overwritten by --resume)
        model.load_state_dict(load_weights(cfg["init"]))
    opt = torch.optim.AdamW(model.receiver.parameters(), lr=cfg["lr"], weight_decay=0.0)
    ckpt_path, state = out_dir / CHECKPOINT, None
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, model, opt, weights_only=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    train_pairs, held, data = prepare(cfg, model.receiver.preset)
    val = _val_set(held[: cfg["data"]["val_count"]], cfg, Path(cfg["cache"]))
    if state is not None:
        restore_rng(state["rng"], rng=rng)
    total = min(cfg["steps"], max_steps) if max_steps else cfg["steps"]
    run, window = Steps(model, opt, cfg, out_dir, state, rng=rng), GainWindow()
    run.run(
        lambda i, lr: window.add(_step(model, opt, data, rng, cfg, lr)),
        window,
        (lambda: validate(model, val)) if val else None,
        total,
        max_minutes,
        progress,
        validate_at_start=True,
    )
    if cfg["calibrate"] and run.step >= total and not run.stopped:
        # the gate is fitted on the held-out pairs (the net never trained on them)
        cfg = serve_and_calibrate(model, {**cfg, "serve": {}}, held or train_pairs, out_dir)
        run.checkpoint(cfg)
    return {**run.metrics, "step": run.step}
