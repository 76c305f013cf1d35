"""Eval runs as data: read and merge ``per_image.csv`` rows, average them per method, rate
point and colour group (``summary.json``), published reference curves, the best classical
codec at each rate, and BD-rate tables against an anchor.
"""

from __future__ import annotations

import csv
import itertools
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from wzcodec import classical
from wzcodec.errors import WzError
from wzcodec.eval import interview
from wzcodec.metrics import bd_rate

FIELDS = [
    "model",
    "quality",
    "image",
    "group",
    "height",
    "width",
    "bytes",
    "bpp",
    "bpp_est",
    "psnr",
    "psnr_base",
    "ms_ssim",
    "ms_ssim_db",
    "encode_s",
    "decode_s",
]


def fixed_method(name: str) -> bool:
    """A method that is no wzcodec model: a classical codec, or ``hevc-p`` / ``hevc-i``."""
    return name in classical.CODECS or name in interview.METHODS


def read_rows(path: str | Path) -> list[dict]:
    """The rows of a ``per_image.csv`` written by ``wz eval`` (a file or its run folder)."""
    path = Path(path)
    path = path / "per_image.csv" if path.is_dir() else path
    kinds = {"model": str, "image": str, "group": str, "height": int, "width": int, "bytes": int}
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        rows = [{k: kinds.get(k, _number)(v) for k, v in r.items()} for r in rows]
        return [{k: r.get(k, math.nan) for k in FIELDS} for r in rows]  # older runs lack some
    except (OSError, ValueError, TypeError) as e:
        raise WzError(f"{path}: not a wz eval per_image.csv: {e}") from None


def _number(v: str) -> float:
    return float(v) if v != "" else math.nan


def check_mergeable(images: list[str], old: list[dict]) -> None:
    """An earlier run can only be merged if it coded the same images (else its means and
    BD-rates would not compare like with like); checked before anything is coded."""
    now, then = set(images), {r["image"] for r in old}
    if now != then:
        raise WzError(
            f"cannot merge: this run codes {len(now)} images, the earlier run {len(then)} "
            f"({len(now ^ then)} differ); use the same --data, --split, --protocol, --every, "
            "--limit and --source"
        )


def merge_rows(new: list[dict], old: list[dict]) -> list[dict]:
    """``old`` rows of the methods ``new`` does not measure, then ``new``: to add or re-run
    methods of an earlier run (on the same images, ``check_mergeable``) without re-running
    the others."""
    measured = {r["model"] for r in new}
    return [r for r in old if r["model"] not in measured] + new


def summarize(rows: list[dict]) -> dict:
    """{group: {model: [{quality, n, bpp, bpp_est, psnr, ms_ssim_db, ...}, ...]}} (means)."""
    acc: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        for g in ("all", r["group"]):
            acc[g][(r["model"], r["quality"])].append(r)
    out: dict = {}
    for g, by in acc.items():
        for (m, q), rs in sorted(by.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            point = {"quality": q, "n": len(rs)}
            keys = ("bpp", "bpp_est", "psnr", "psnr_base", "ms_ssim", "ms_ssim_db")
            for k in (*keys, "encode_s", "decode_s"):
                point[k] = float(np.mean([r.get(k, math.nan) for r in rs]))
            out.setdefault(g, {}).setdefault(m, []).append(point)
    return out


def read_reference(path: str | Path) -> dict:
    """Published rate-distortion points to draw and rank beside measured ones: a CSV with
    columns ``method, bpp, psnr`` (and optionally ``ms_ssim_db``). They join the ``all`` group
    under the name ``METHOD (published)``; they are never mixed into measured rows."""
    curves: dict = defaultdict(list)
    try:
        with open(path, newline="") as f:
            for r in csv.DictReader(line for line in f if not line.startswith("#")):
                curve = curves[f"{r['method']} (published)"]
                point = {"quality": len(curve) + 1, "n": 0}
                for k in ("bpp", "psnr", "ms_ssim_db"):
                    point[k] = float(r[k]) if r.get(k) else math.nan
                curve.append(point)
    except (OSError, KeyError, ValueError) as e:
        raise WzError(f"{path}: not a reference curve CSV (method,bpp,psnr): {e}") from None
    return dict(curves)


BEST_CLASSICAL = "best-classical"


def best_classical(models: dict, metric: str, n: int = 64) -> list[dict]:
    """The strongest classical codec at each quality: the lower envelope of every classical
    method's rate curve (log bpp as a pchip function of ``metric``, over the method's own
    range), sampled at ``n`` qualities and made non-decreasing. Empty without classical
    methods."""
    from scipy.interpolate import PchipInterpolator

    curves = []
    for m, pts in models.items():
        d = sorted({p[metric]: p["bpp"] for p in pts}.items()) if m in classical.CODECS else []
        if len(d) >= 2 and all(r0 < r1 for (_, r0), (_, r1) in itertools.pairwise(d)):
            q, r = np.array(d).T
            curves.append((q[0], q[-1], PchipInterpolator(q, np.log(r))))
    if not curves:
        return []
    qs = np.linspace(min(c[0] for c in curves), max(c[1] for c in curves), n)
    # a quality between the ranges of two codecs (each sampled apart) has no curve: skipped
    qs = np.array([q for q in qs if any(lo <= q <= hi for lo, hi, _ in curves)])
    logs = np.array([min(float(f(q)) for lo, hi, f in curves if lo <= q <= hi) for q in qs])
    # a codec whose range starts higher can need fewer bits than the envelope just below it:
    # a quality is worth no more bits than any higher one (running minimum from the top)
    logs = np.minimum.accumulate(logs[::-1])[::-1]
    keep = np.r_[True, np.diff(logs) > 0]
    return [
        {metric: float(q), "bpp": float(np.exp(r))}
        for q, r in zip(qs[keep], logs[keep], strict=True)
    ]


def bd_table(summary: dict, anchor: str, metric: str = "psnr") -> dict:
    """BD-rate (%) of every model against ``anchor``, per group; NaN where curves don't overlap.
    ``anchor`` may be ``best-classical`` (``best_classical``: the strongest classical codec at
    each rate, per metric)."""
    table: dict = {}
    for g, models in summary.items():
        if anchor == BEST_CLASSICAL:
            models = {**models, anchor: best_classical(models, metric)}
        if not models.get(anchor):
            continue
        a = sorted(models[anchor], key=lambda p: p["bpp"])
        for m, pts in models.items():
            t = sorted(pts, key=lambda p: p["bpp"])
            try:
                v = bd_rate(
                    [p["bpp"] for p in a],
                    [p[metric] for p in a],
                    [p["bpp"] for p in t],
                    [p[metric] for p in t],
                )
            except Exception:  # bjontegaard raises on non-overlapping or non-monotonic curves
                v = math.nan
            table.setdefault(g, {})[m] = v
    return table
