"""What a training step sees: batches drawn with a resumable generator, the side-image
curricula, the matching loss's shifted copies, and the validation crops.

    train specs ──► PairDataset(TrainTransform) ──► Batches.next() ──► (x, y)
                                          side_curriculum ──► easy_side(x, y)
                                          match_loss      ──► shifted_copies(x) ──► match_side
    val spec ──► val_pairs(cfg): centre crops of a few evenly spread pairs
"""

from __future__ import annotations

import random

import torch

from wzcodec.data import PairDataset, TrainTransform, from_spec
from wzcodec.data.protocols import PROTOCOLS


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


def train_batches(cfg: dict, gen: torch.Generator, per_rank: int, device: str) -> Batches:
    """Batches of ``per_rank`` crops of the train splits of every ``data.train`` spec."""
    pairs = [p for spec in cfg["data"]["train"] for p in from_spec(spec, split="train")]
    transform = TrainTransform(crop=cfg["crop"], protocol=cfg["train_protocol"])
    return Batches(PairDataset(pairs, transform=transform), per_rank, gen, device)


def _relit_roll(img: torch.Tensor, shifts, dims, draw: torch.Tensor) -> torch.Tensor:
    """``img`` rolled by ``shifts`` along ``dims`` with a gain 0.85..1.15 and an offset
    ±12/255 taken from two uniform draws, clamped to [0, 1]."""
    gain, offset = 0.85 + 0.3 * draw[0].item(), (draw[1].item() - 0.5) * 24 / 255
    return (img.roll(shifts, dims=dims) * gain + offset).clamp(0, 1)


def easy_side(
    x: torch.Tensor, y: torch.Tensor, p: float, max_shift: int, gen: torch.Generator
) -> torch.Tensor:
    """The side-image curriculum (``side_curriculum`` in a config; copy before match): each
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
    y, dk, dr = shifted_copies(x, int(spec["max_shift"]), gen)
    feats = model.cam_inputs(x, y, q)
    pairs = zip(model.cams, feats, strict=True)
    losses = [cam.match_loss(fx, fy, dk, dr) for cam, (fx, fy) in pairs]
    return torch.stack(losses).mean()


def val_pairs(cfg: dict) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Centre crops (up to 256x512, multiples of 64) of ``data.val_count`` evenly spread
    pairs of ``data.val`` (a resolved config's; none without ``data.val``)."""
    data = cfg["data"]
    if not data["val"]:
        return []
    count = data["val_count"]
    pairs = from_spec(data["val"], split=data["val_split"])
    pairs = pairs[:: max(1, len(pairs) // count)][:count]
    ds = PairDataset(pairs, transform=PROTOCOLS[cfg["val_protocol"]], preload=False)
    out = []
    for i in range(len(ds)):
        x, y = ds.sample(i, random.Random(i))
        h, w = (min(x.shape[1], 256) // 64) * 64, (min(x.shape[2], 512) // 64) * 64
        top, left = (x.shape[1] - h) // 2, (x.shape[2] - w) // 2
        box = (slice(None), slice(top, top + h), slice(left, left + w))
        out.append((x[box][None], y[box][None]))
    return out
