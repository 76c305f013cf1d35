"""``wz eval``: rate-distortion of learned and classical codecs on the same pairs, real files only.

    pairs (spec, split, protocol) ──► for each model x quality x image:
        learned:   codec.encode(x) ──► bytes ──► codec.decode(bytes, side=y)      (+ likelihood bpp)
        classical: Pillow encode at a quality setting ──► bytes ──► decode
    ──► per_image.csv ──► summary.json (mean per model, quality and colour group)
    ──► rd_psnr.png, rd_msssim.png ──► bd_rate.csv (every method against an anchor)

bpp is always the size of the real file (container header and CRC included) over the
original pixel count; "bpp_est" is the learned models' likelihood estimate, for comparison.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import multiprocessing
import os
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from wzcodec import classical, interview
from wzcodec.codec import CODING_THREADS, load
from wzcodec.data import from_spec
from wzcodec.data.protocols import paper_view
from wzcodec.errors import WzError
from wzcodec.files import atomic_open
from wzcodec.images import is_gray, read_rgb
from wzcodec.memory import reuse_freed_memory
from wzcodec.metrics import bd_rate, ms_ssim, ms_ssim_db, psnr

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


def load_pairs(
    spec: str,
    split: str | None,
    protocol: str,
    limit: int | None = None,
    every: int = 1,
    sources: list[str] | None = None,
    sides: list[int] | None = None,
):
    """[(name, x, y)] as HxWx3 uint8 under the protocol (``native`` keeps the size); ``sources``
    keeps those sources only (for example ``kodak`` of the photos), ``every`` every k-th pair
    (a subset spread over all sources), ``limit`` the first n of those. Pairs with several side
    images (a ``rig:`` set) have y as a list of them: ``sides`` picks which (1-based, in the
    pair's order; default all)."""
    try:
        pairs = from_spec(spec, split=split)
    except (ValueError, OSError) as e:
        raise WzError(str(e)) from None
    if sources:
        pairs = [p for p in pairs if p.source in sources]
    pairs = pairs[::every]
    if limit:
        pairs = pairs[:limit]
    if not pairs:
        raise WzError(f"no pairs in {spec!r} for split {split!r}")
    out = []
    for p in pairs:

        def read(path, source=p.source) -> np.ndarray:  # under the protocol
            img = read_rgb(path)
            return paper_view(img, source) if protocol == "paper" else img

        x = read(p.x)
        if p.extra:
            y = [read(s) for s in _pick(p.sides, sides)]
        else:
            y = read(p.y) if p.y is not None else x
        out.append((p.name, x, y))
    return out


def _pick(all_sides: tuple, sides: list[int] | None) -> list:
    if not sides:
        return list(all_sides)
    bad = [k for k in sides if not 1 <= k <= len(all_sides)]
    if bad:
        raise WzError(f"--sides {bad[0]}: these pairs have side images 1..{len(all_sides)}")
    return [all_sides[k - 1] for k in sides]


def side_label(pairs, sides: list[int] | None) -> str:
    """The suffix that names which side images a side model got, for pairs with several
    (``[y1+y2]``); empty for plain pairs."""
    if not any(isinstance(p[2], list) for p in pairs):
        return ""
    n = max(len(p[2]) for p in pairs if isinstance(p[2], list))
    return "[" + "+".join(f"y{k}" for k in (sides or range(1, n + 1))) + "]"


def _measure(x, x_hat, nbytes, enc, dec, **extra) -> dict:
    s = ms_ssim(x, x_hat)
    h, w = x.shape[:2]
    return {
        "height": h,
        "width": w,
        "bytes": nbytes,
        "bpp": nbytes * 8 / (h * w),
        "psnr": psnr(x, x_hat),
        "ms_ssim": s,
        "ms_ssim_db": ms_ssim_db(s),
        "encode_s": enc,
        "decode_s": dec,
        **extra,
    }


SIDE_MODES = ("true", "other", "shifted", "dark", "none", "oracle", "decoded")


def side_image(pairs, i: int, mode: str) -> np.ndarray | list[np.ndarray] | None:
    """The side image the decoder gets for pair i: the true y, or a lying one (another pair's
    y resized to fit, y shifted 32 px to the right, y at half brightness), none, or the oracle
    y = x itself: the most any side image could give this decoder. A pair with several side
    images gets them all, each lying the same way (``other``: the other pair's first).
    ``decoded``: the true y, which the caller then codes with the same codec and quality
    (what a rig's receiver holds when every camera sends; ``_evaluate_image``)."""
    _, x, y = pairs[i]
    if mode in ("true", "decoded"):
        return y
    if mode == "oracle":
        return x
    if mode == "none":
        return None
    if mode == "other":
        from PIL import Image

        other = pairs[(i + max(1, len(pairs) // 2)) % len(pairs)][2]
        other = other[0] if isinstance(other, list) else other
        return np.asarray(Image.fromarray(other).resize((x.shape[1], x.shape[0]), Image.BILINEAR))
    if mode not in SIDE_MODES:
        raise WzError(f"side mode must be one of {', '.join(SIDE_MODES)}, not {mode!r}")
    if isinstance(y, list):
        return [_lie(s, mode) for s in y]
    return _lie(y, mode)


def _as_list(y) -> list:
    return y if isinstance(y, list) else [y]


def _lie(y: np.ndarray, mode: str) -> np.ndarray:
    if mode == "dark":
        return (y.astype(np.float32) * 0.5).round().astype(np.uint8)
    # shifted
    return np.concatenate([np.repeat(y[:, :1], 32, axis=1), y[:, :-32]], axis=1)[:, : y.shape[1]]


_CODECS: dict = {}


def fixed_method(name: str) -> bool:
    """A method that is no wzcodec model: a classical codec, or ``hevc-p`` / ``hevc-i``."""
    return name in classical.CODECS or name in interview.METHODS


def _codec(spec: str):
    """``NAME`` (shipped weights) or ``NAME=WEIGHTS.safetensors[@LABEL]`` -> (label, codec),
    cached. The label names the method in the outputs (default NAME): ``@LABEL`` sets apart
    other weights of the same model, e.g. ``avif-si=runs/cam/refiner-cam.safetensors@avif-cam``."""
    if spec not in _CODECS:
        name, _, weights = spec.partition("=")
        weights, _, label = weights.partition("@")
        _CODECS[spec] = (label or name, load(name, weights=weights or None))
    return _CODECS[spec]


def _jobs(
    models: list[str], qualities: list[float] | None, suffix: str = ""
) -> list[tuple[str, str, float]]:
    """(spec, label, quality) for every method and rate point, in report order; ``suffix``
    names the side images that side models got (``side_label``)."""
    out = []
    for m in models:
        if m in classical.CODECS:
            out += [(m, m, q) for q in classical.CODECS[m][2]]
        elif m in interview.METHODS:
            out += [(m, m, q) for q in interview.QPS]
        else:
            label, codec = _codec(m)
            label += suffix if codec.uses_side else ""
            out += [(m, label, q) for q in (qualities or codec.qualities)]
    return out


def _evaluate_image(pairs, i: int, jobs, side_mode: str, estimate: bool) -> list[dict]:
    """Every method and rate point on pair i."""
    name, x, _ = pairs[i]
    group = "gray" if is_gray(x) else "color"
    rows = []
    for spec, label, q in jobs:
        base = {"model": label, "quality": q, "image": name, "group": group}
        if spec in classical.CODECS:
            t = time.perf_counter()
            data = classical.encode(spec, x, int(q))
            enc = time.perf_counter() - t
            t = time.perf_counter()
            x_hat = classical.decode(data)
            dec = time.perf_counter() - t
            extra = {"bpp_est": math.nan, "psnr_base": math.nan}
            rows.append({**base, **_measure(x, x_hat, len(data), enc, dec, **extra)})
        elif spec in interview.METHODS:  # the encoder sees y: always the true first side image
            y = pairs[i][2][0] if isinstance(pairs[i][2], list) else pairs[i][2]
            t = time.perf_counter()
            size, x_hat = interview.code_pair(x, y, int(q), inter=spec == "hevc-p")
            extra = {"bpp_est": math.nan, "psnr_base": math.nan}
            rows.append({**base, **_measure(x, x_hat, size, time.perf_counter() - t, 0.0, **extra)})
        else:
            codec, y = _codec(spec)[1], side_image(pairs, i, side_mode)
            if side_mode == "decoded" and y is not None:  # each side image as its camera sent it
                ys = [codec.decode(codec.encode(s, quality=q)) for s in _as_list(y)]
                y = ys if isinstance(y, list) else ys[0]
            t = time.perf_counter()
            data = codec.encode(x, quality=q)
            enc = time.perf_counter() - t
            t = time.perf_counter()
            x_hat = codec.decode(data, side=y)
            dec = time.perf_counter() - t
            extra = {"bpp_est": math.nan, "psnr_base": math.nan}
            base_img = codec.base_decode(data)  # a receiver's: the standard codec's own picture
            if base_img is not None:
                extra["psnr_base"] = psnr(x, base_img)
            elif estimate:
                extra["bpp_est"] = codec.reconstruct(x, side=y, quality=q)[1]
            rows.append({**base, **_measure(x, x_hat, len(data), enc, dec, **extra)})
    return rows


def _init_worker(pairs) -> None:
    global _PAIRS
    _PAIRS = pairs
    torch.set_num_threads(1)
    reuse_freed_memory()


def _worker(i: int, jobs, side_mode: str, estimate: bool) -> tuple[int, list[dict]]:
    return i, _evaluate_image(_PAIRS, i, jobs, side_mode, estimate)


def evaluate(
    pairs,
    models: list[str],
    qualities: list[float] | None = None,
    progress: bool = True,
    side_mode: str = "true",
    estimate: bool = True,
    workers: int = 1,
    suffix: str = "",
) -> list[dict]:
    """Rows of per-image measurements for every model and rate point. ``models`` are classical
    codec names, learned model names, or ``NAME=WEIGHTS`` for learned models. ``workers`` > 1
    codes that many images at once in separate processes (same rows, same order), at most
    one process per ``CODING_THREADS`` cores."""
    jobs = _jobs(models, qualities, suffix)
    # every codec call runs CODING_THREADS threads: more processes than cores / that would
    # oversubscribe the CPU, and oneDNN's spinning threads then slow everything ~5x (measured)
    workers = max(1, min(workers, (os.cpu_count() or 1) // CODING_THREADS, len(pairs)))
    per_image: dict[int, list[dict]] = {}
    bar = tqdm(total=len(pairs), disable=not progress, desc="eval", dynamic_ncols=True)
    if workers <= 1:
        for i in range(len(pairs)):
            per_image[i] = _evaluate_image(pairs, i, jobs, side_mode, estimate)
            bar.update(1)
    else:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, ctx, initializer=_init_worker, initargs=(pairs,)) as ex:
            futures = [ex.submit(_worker, i, jobs, side_mode, estimate) for i in range(len(pairs))]
            for f in as_completed(futures):
                i, rows = f.result()
                per_image[i] = rows
                bar.update(1)
    bar.close()
    # report order: method, rate point, image
    order = {(label, q): k for k, (_, label, q) in enumerate(jobs)}
    rows = [r for i in range(len(pairs)) for r in per_image[i]]
    return sorted(rows, key=lambda r: order[(r["model"], r["quality"])])


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


def plot(summary: dict, path: Path, metric: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [g for g in ("color", "gray", "all") if g in summary]
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4.2), squeeze=False)
    tab20 = plt.get_cmap("tab20").colors  # dark shades first: tab10 would repeat at 11 methods
    colors = tab20[::2] + tab20[1::2]
    for ax, g in zip(axes[0], groups, strict=True):
        xmax, seen = 1.2, []
        for i, (m, pts) in enumerate(sorted(summary[g].items())):
            pts = sorted(pts, key=lambda p: p["bpp"])
            style = "--" if fixed_method(m) else ":" if "(published)" in m else "-"
            ax.plot(
                [p["bpp"] for p in pts],
                [p[metric] for p in pts],
                style,
                marker="o",
                ms=3,
                label=m,
                color=colors[i % 20],
            )
            seen += [p[metric] for p in pts if p["bpp"] <= xmax and math.isfinite(p[metric])]
        ax.set_xlabel("bits per pixel (real file)")
        ax.set_ylabel({"psnr": "PSNR (dB)", "ms_ssim_db": "MS-SSIM (dB)"}[metric])
        ax.set_title(f"{title} [{g}]")
        ax.set_xlim(0, min(xmax, ax.get_xlim()[1]))
        if seen:  # the shown bpp range only: a codec's 50 dB top point would squash the rest
            ax.set_ylim(min(seen) - 0.5, max(seen) + 0.5)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save_figure(fig, path)


def save_figure(fig, path: Path) -> None:
    """Write a matplotlib figure as PNG atomically (nothing half-written) and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_open(path) as f:
        fig.savefig(f, format="png", dpi=120)
    plt.close(fig)


def write_outputs(
    rows: list[dict],
    out: Path,
    anchor: str,
    title: str,
    reference: dict | None = None,
    side: str = "true",
) -> dict:
    """per_image.csv, summary.json (means, BD-rates against ``anchor``, the ``side`` mode the
    decoder got), bd_rate.csv and the RD plots in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / "per_image.csv") as f:
        text = _csv_text(rows)
        f.write(text.encode())
    summary = summarize(rows)
    if reference:
        summary.setdefault("all", {}).update(reference)
    bd = {metric: bd_table(summary, anchor, metric) for metric in ("psnr", "ms_ssim_db")}
    with atomic_open(out / "summary.json") as f:
        f.write(
            json.dumps(
                {
                    "summary": summary,
                    "bd_rate_vs": anchor,
                    "bd_rate": bd,
                    "side": side,
                    "title": title,
                },
                indent=1,
            ).encode()
        )
    lines = ["group,model,bd_rate_psnr_percent,bd_rate_msssim_db_percent"]
    for g in bd["psnr"]:
        for m in bd["psnr"][g]:
            lines.append(
                f"{g},{m},{bd['psnr'][g][m]:.2f},{bd['ms_ssim_db'][g].get(m, math.nan):.2f}"
            )
    with atomic_open(out / "bd_rate.csv") as f:
        f.write(("\n".join(lines) + "\n").encode())
    plot(summary, out / "rd_psnr.png", "psnr", title)
    plot(summary, out / "rd_msssim.png", "ms_ssim_db", title)
    return {"summary": summary, "bd_rate": bd}


def _csv_text(rows: list[dict]) -> str:
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FIELDS)
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()


def print_summary(result: dict, anchor: str) -> None:
    for g, models in result["summary"].items():
        print(f"\n[{g}]  BD-rate vs {anchor} (PSNR / MS-SSIM dB)")
        for m, pts in models.items():
            bd_p = result["bd_rate"]["psnr"].get(g, {}).get(m, math.nan)
            bd_s = result["bd_rate"]["ms_ssim_db"].get(g, {}).get(m, math.nan)
            curve = "  ".join(
                f"{p['bpp']:.3f}/{p['psnr']:.2f}" for p in sorted(pts, key=lambda p: p["bpp"])
            )
            print(f"  {m:<12} {bd_p:+7.1f}% {bd_s:+7.1f}%   bpp/PSNR: {curve}")
