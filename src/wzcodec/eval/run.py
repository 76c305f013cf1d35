"""``wz eval``: rate-distortion of every method on the same pairs, real files only.

    pairs (spec, split, protocol) ──► for each method x quality x image, through ``Codec``:
        codec.encode(x) ──► bytes ──► codec.decode(bytes, side=y)   (+ likelihood bpp)
        (``hevc-p`` / ``hevc-i``, the encoder that sees y: ``interview.py``)
    ──► per_image.csv ──► summary.json (mean per model, quality and colour group)
    ──► rd_psnr.png, rd_msssim.png ──► bd_rate.csv (every method against an anchor)

bpp is always the size of the real file over the original pixel count (``Codec.stored_size``:
a model's ``.wz`` file, container header and CRC included; a standard codec's own file);
"bpp_est" is the end-to-end models' likelihood estimate, for comparison.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np
import torch
from tqdm import tqdm

from wzcodec.codec import CODING_THREADS, NO_WEIGHTS, load
from wzcodec.data import from_spec
from wzcodec.data.protocols import paper_view
from wzcodec.errors import WzError
from wzcodec.eval import interview
from wzcodec.images import is_gray, read_rgb
from wzcodec.memory import reuse_freed_memory
from wzcodec.metrics import ms_ssim, ms_ssim_db, psnr


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


def codec_for(spec: str):
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
        if m in interview.METHODS:
            out += [(m, m, q) for q in interview.QPS]
            continue
        label, codec = codec_for(m)
        label += suffix if codec.uses_side else ""
        # ``qualities`` are for the models; a standard codec alone keeps its own sweep
        mine = qualities if codec.weights_id != NO_WEIGHTS else None
        out += [(m, label, q) for q in (mine or codec.qualities)]
    return out


def _evaluate_image(pairs, i: int, jobs, side_mode: str, estimate: bool) -> list[dict]:
    """Every method and rate point on pair i."""
    name, x, _ = pairs[i]
    group = "gray" if is_gray(x) else "color"
    rows = []
    for spec, label, q in jobs:
        base = {"model": label, "quality": q, "image": name, "group": group}
        if spec in interview.METHODS:  # the encoder sees y: always the true first side image
            y = pairs[i][2][0] if isinstance(pairs[i][2], list) else pairs[i][2]
            t = time.perf_counter()
            size, x_hat = interview.code_pair(x, y, int(q), inter=spec == "hevc-p")
            extra = {"bpp_est": math.nan, "psnr_base": math.nan}
            rows.append({**base, **_measure(x, x_hat, size, time.perf_counter() - t, 0.0, **extra)})
        else:
            codec, y = codec_for(spec)[1], side_image(pairs, i, side_mode)
            if side_mode == "decoded" and y is not None and codec.uses_side:  # as it was sent
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
            elif estimate and codec.plain(data) is None:  # an end-to-end model's estimate
                extra["bpp_est"] = codec.reconstruct(x, side=y, quality=q)[1]
            size = codec.stored_size(data)
            rows.append({**base, **_measure(x, x_hat, size, enc, dec, **extra)})
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
