"""``wz train`` for a receiver over a standard codec (``avif-si``, ``heic-si``, ``*-pf``).

    train pairs (x, y) ──► x through every base codec at every quality, once ──► cache (PNG)
    each step: a random pair, base, quality; a crop at the same place of x, x̂ and y
           ──► x̃ = R(x̂, y) ──► loss = 10·log10(MSE(x, x̃) / MSE(x, x̂))  (dB lost, per sample)

The loss is the refinement's PSNR change, so every rate point counts the same (an MSE loss
would be ruled by the lowest qualities) and making a good base decode worse costs as much as
improving a poor one gains. With probability ``unrelated_p`` a sample's y is another pair's:
the net must learn to leave x̂ alone when y does not match. Single photos (a ``photos:`` spec)
become pseudo-pairs as in every trainer (``data.protocols.pseudo_pair``): y is a crop of the
same photo up to 48 columns to the left, re-lit: a stereo pair with one disparity.

The config keys and their defaults are ``config.REFINER_DEFAULTS``; ``docs/training.md``
explains them. The log's ``psnr`` column is the mean training gain over the base decode, in dB.
Checkpoints, resume, signals and the log are the end-to-end loop's (``checkpoint.py``,
``log.py``).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
import yaml

from wzcodec import classical
from wzcodec.catalog import entry
from wzcodec.data import from_spec
from wzcodec.data.protocols import cut, pseudo_pair
from wzcodec.errors import WzError
from wzcodec.images import read_rgb
from wzcodec.models import build
from wzcodec.training.base_decodes import (
    cache_path,
    gray_or_rgb,
    load_image,
    pad_to_crop,
    precompute,
    to_chw,
)
from wzcodec.training.checkpoint import (
    CHECKPOINT,
    load_checkpoint,
    restore_rng,
)
from wzcodec.training.gate import serve_and_calibrate
from wzcodec.training.steps import GainWindow, Steps
from wzcodec.training.validate import psnr

EPS = 1e-4  # MSE floor of the loss: crops above 40 dB PSNR weigh less (the gate is for them)


class RefinerData:
    """Pairs with their base decodes in memory; draws aligned crops. A pair (x, None) is a
    single photo: ``sample`` makes its y (module docstring)."""

    def __init__(self, pairs, qualities, cache: Path, crop: tuple[int, int]):
        self.crop = crop
        self.images: dict[Path, np.ndarray] = {}
        self.pairs = pairs
        self.decodes: list[tuple[str, int, dict[Path, np.ndarray]]] = []
        for p in pairs:
            for path in (p[0], p[1]):
                if path is not None and path not in self.images:
                    self.images[path] = gray_or_rgb(read_rgb(path))
        xs = sorted({p[0] for p in pairs})
        for base, qs in qualities.items():
            for q in qs:
                self.decodes.append(
                    (base, q, {x: load_image(cache_path(cache, base, q, x)) for x in xs})
                )

    def sample(self, rng: random.Random, unrelated_p: float):
        x_path, y_path = self.pairs[rng.randrange(len(self.pairs))]
        _, _, dec = self.decodes[rng.randrange(len(self.decodes))]
        x, x_hat = self.images[x_path], dec[x_path]
        ch, cw = self.crop
        if rng.random() < unrelated_p:
            j = rng.randrange(len(self.pairs))
            y_path = self.pairs[j][1] or self.pairs[j][0]  # a photo's side image: itself
            if y_path == x_path:  # drew itself: the next pair's x
                y_path = self.pairs[(j + 1) % len(self.pairs)][0]
        elif y_path is None:
            return self._pseudo(rng, x, x_hat)
        y = self.images[y_path]
        h, w = x.shape[:2]
        top, left = rng.randint(0, max(0, h - ch)), rng.randint(0, max(0, w - cw))
        yh, yw = y.shape[:2]
        ytop, yleft = min(top, max(0, yh - ch)), min(left, max(0, yw - cw))

        def cut(a, t, lft):
            return pad_to_crop(to_chw(a[t : t + ch, lft : lft + cw]), ch, cw)

        out = cut(x, top, left), cut(x_hat, top, left), cut(y, ytop, yleft)
        if rng.random() < 0.5:  # a joint mirror keeps the pair's geometry consistent
            out = tuple(t.flip(-1) for t in out)
        return out

    def _pseudo(self, rng: random.Random, x: np.ndarray, x_hat: np.ndarray):
        """x, x̂ and a pseudo side image (``data.protocols.pseudo_pair``, as the end-to-end
        trainer draws them)."""
        p = pseudo_pair(x.shape[0], x.shape[1], self.crop, rng)

        def crop(a, box):
            return pad_to_crop(to_chw(cut(a, box)), *self.crop)

        y = (crop(x, p.y_box) * p.gain + p.offset / 255).clamp(0, 1)
        out = crop(x, p.x_box), crop(x_hat, p.x_box), y
        if rng.random() < 0.5:
            out = tuple(t.flip(-1) for t in out)
        return out


def _pairs(specs: list[str], split: str, both: bool) -> list[tuple[Path, Path]]:
    out = []
    for spec in specs:
        for p in from_spec(spec, split=split):
            out.append((p.x, p.y))  # y None: a single photo, a pseudo-pair (``RefinerData``)
            if both and p.y is not None:
                out.append((p.y, p.x))
    return out


@torch.no_grad()
def validate(model, val: list, bases: dict[str, list[int]]) -> dict:
    """PSNR of the base decode, the refinement with the true y, with an unrelated y and with
    none (``val_psnr_<base>_q<q>`` and gaps), at each base's lowest and highest quality."""
    model.eval()
    res: dict[str, float] = {}
    for base, qs in bases.items():
        for q in (qs[0], qs[-1]):
            acc: dict[str, list[float]] = {"base": [], "true": [], "other": [], "none": []}
            for i, (x, y, decs) in enumerate(val):
                x_hat = decs[(base, q)]
                other = val[(i + 1) % len(val)][1]
                other = other if other.shape == y.shape else y.flip(-1).flip(-2)
                acc["base"].append(psnr(((x_hat - x) ** 2).mean().item()))
                for case, side in (("true", y), ("other", other), ("none", None)):
                    out = model(x_hat, side).clamp(0, 1)
                    acc[case].append(psnr(((out - x) ** 2).mean().item()))
            m = {k: float(np.mean(v)) for k, v in acc.items()}
            res[f"val_psnr_base_{base}_q{q}"] = m["base"]
            res[f"val_psnr_{base}_q{q}"] = m["true"]
            res[f"val_gain_{base}_q{q}"] = m["true"] - m["base"]
            res[f"val_gap_unrelated_{base}_q{q}"] = m["true"] - m["other"]
            res[f"val_gap_none_{base}_q{q}"] = m["true"] - m["none"]
    model.train()
    return res


def _val_set(cfg: dict, bases: dict[str, list[int]]) -> list:
    data = cfg["data"]
    if not data["val"]:
        return []
    pairs = from_spec(data["val"], split=data["val_split"])
    count = data["val_count"]
    pairs = [p for p in pairs if p.y is not None]
    pairs = pairs[:: max(1, len(pairs) // count)][:count]
    out = []
    for p in pairs:
        x, y = read_rgb(p.x), read_rgb(p.y)
        if x.shape != y.shape:
            continue
        decs = {
            (b, q): to_chw(classical.decode(classical.encode(b, x, q)))[None]
            for b, qs in bases.items()
            for q in (qs[0], qs[-1])
        }
        out.append((to_chw(x)[None], to_chw(y)[None], decs))
    return out


def start_from_dsin(model) -> None:
    """R starts as the shipped dsin fusion net. It takes x̂ and y_syn (6 channels); with
    ``align: both`` R takes y_cam as well, whose 3 inputs start at weight 0, so the start is
    the matching refiner's."""
    from wzcodec.codec import load

    start = load("dsin").model.fusion.state_dict()
    w = start["body.0.weight"]
    extra = model.receiver.refiner.body[0].in_channels - w.shape[1]
    start["body.0.weight"] = torch.cat([w, w.new_zeros(w.shape[0], extra, *w.shape[2:])], 1)
    model.receiver.refiner.load_state_dict(start)


def train(
    cfg: dict,
    out_dir: str | Path,
    resume: bool = False,
    max_steps: int | None = None,
    max_minutes: float | None = None,
    progress: bool = True,
) -> dict:
    """Train (or resume) a refiner; ``cfg`` is a checked, resolved config (``config.py``)."""
    cfg = with_bases(cfg)
    qualities, out_dir = cfg["qualities"], Path(out_dir)
    torch.manual_seed(cfg["seed"])
    rng = random.Random(cfg["seed"])
    model = build(cfg["model"], **cfg["model_config"])
    model.receiver.bf16 = bool(cfg["bf16"])
    model = model.to(memory_format=torch.channels_last)
    if cfg["init"] == "dsin":  # overwritten below when resuming
        start_from_dsin(model)
    elif cfg["init"] is not None:
        raise WzError(f"init: unknown start {cfg['init']!r} (known: dsin)")
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])  # R, and CamAlign if any
    ckpt_path, state = out_dir / CHECKPOINT, None
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, model, opt, weights_only=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    pairs, data = _train_data(cfg)
    val = _val_set(cfg, qualities)
    if state is not None:  # the random streams last, after everything that draws from them
        restore_rng(state["rng"], rng=rng)
    total = min(cfg["steps"], max_steps) if max_steps else cfg["steps"]
    run, window = Steps(model, opt, cfg, out_dir, state, rng=rng), GainWindow()
    run.run(
        lambda i, lr: window.add(_step(model, opt, data, rng, cfg, lr)),
        window,
        (lambda: validate(model, val, qualities)) if val else None,
        total,
        max_minutes,
        progress,
        validate_at_start=True,
    )
    if (cfg["calibrate"] or cfg["serve"]) and not run.stopped:
        cfg = serve_and_calibrate(model, cfg, pairs, out_dir)  # the checkpoint's config too
        run.checkpoint(cfg)
    return {**run.metrics, "step": run.step}


def with_bases(cfg: dict) -> dict:
    """``bases`` (default: the model's own) and ``qualities`` (default: each base's classical
    sweep) filled in, so the checkpoint records what was trained."""
    bases = list(cfg["bases"] or [entry(cfg["model"]).base])
    for b in bases:
        if b not in classical.CODECS:
            raise WzError(f"bases: unknown codec {b!r}")
    qualities = {b: list(cfg["qualities"].get(b, classical.CODECS[b][2])) for b in bases}
    return {**cfg, "bases": bases, "qualities": qualities}


def _train_data(cfg: dict) -> tuple[list, RefinerData]:
    """The train pairs and their crops, base decodes coded into the cache first."""
    pairs = _pairs(cfg["data"]["train"], "train", cfg["both_directions"])
    if not pairs:
        raise WzError("no training pairs")
    cache = Path(cfg["cache"])
    precompute(sorted({p[0] for p in pairs}), cfg["qualities"], cache, int(cfg["workers"]))
    crop = cfg["crop"]
    crop = (crop, crop) if isinstance(crop, int) else tuple(crop)
    return pairs, RefinerData(pairs, cfg["qualities"], cache, crop)


def _step(model, opt, data: RefinerData, rng: random.Random, cfg: dict, lr: float) -> float:
    """One optimizer step; returns its loss (dB lost against the base decode)."""
    for g in opt.param_groups:
        g["lr"] = lr
    items = [data.sample(rng, float(cfg["unrelated_p"])) for _ in range(cfg["batch"])]
    x, x_hat, y = (
        torch.stack(t).contiguous(memory_format=torch.channels_last)
        for t in zip(*items, strict=True)
    )
    out = model(x_hat, y)
    # the gain in dB over the base decode, per crop (quality-blind: each crop counts alike);
    # EPS (a 40 dB floor) keeps near-perfect crops from dominating
    mse = ((out - x) ** 2).flatten(1).mean(1) + EPS
    base = ((x_hat - x) ** 2).flatten(1).mean(1) + EPS
    loss = (10 * torch.log10(mse / base)).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg["clip"]:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
    opt.step()
    return loss.item()
