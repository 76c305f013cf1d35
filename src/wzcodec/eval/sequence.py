"""``wz eval-seq``: a sequence decoded fed forward (``wzcodec.sequence.decode_sequence``), each
frame refined with the decodes before it, measured against its base decode and against the
true previous frames: per-frame rows, a summary with BD-rates, and a plot of the gain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from wzcodec.codec import Codec
from wzcodec.images import read_rgb
from wzcodec.metrics import bd_rate, psnr
from wzcodec.sequence import decode_sequence


def measure(
    codec: Codec,
    frames: Sequence,
    qualities: Sequence[float],
    refs: int = 2,
    progress: bool = True,
) -> list[dict]:
    """Code every frame alone at each quality and decode it three ways: ``base`` (no side
    image: the base codec's own picture for a model over one), ``seq`` (``decode_sequence``:
    the receiver's own earlier decodes) and ``true`` (the true previous frames: an upper
    bound). One row per frame and quality."""
    images = [read_rgb(f) if not isinstance(f, np.ndarray) else f for f in frames]
    rows = []
    bar = tqdm(total=len(qualities) * len(images), disable=not progress, desc="sequence")
    for q in qualities:
        blobs = [codec.encode(x, quality=q) for x in images]
        seq = decode_sequence(codec, blobs, refs)
        for t, (x, data, x_seq) in enumerate(zip(images, blobs, seq, strict=True)):
            true_refs = [images[t - k] for k in range(1, refs + 1) if t - k >= 0]
            x_true = codec.decode(data, side=true_refs or None)
            h, w = x.shape[:2]
            rows.append(
                {
                    "quality": q,
                    "frame": t,
                    "bytes": len(data),
                    "bpp": 8 * len(data) / (h * w),
                    "psnr_base": psnr(x, codec.decode(data)),
                    "psnr_seq": psnr(x, x_seq),
                    "psnr_true": psnr(x, x_true),
                }
            )
            bar.update(1)
    bar.close()
    return rows


def summarize(rows: list[dict], skip_first: bool = False) -> dict:
    """Mean bpp and PSNR per quality for ``base``, ``seq`` and ``true``, and the BD-rates
    (PSNR) of ``seq`` against ``base`` and against ``true`` (negative: fewer bits)."""
    qs = sorted({r["quality"] for r in rows})
    curves: dict[str, list[tuple[float, float]]] = {"base": [], "seq": [], "true": []}
    for q in qs:
        rs = [r for r in rows if r["quality"] == q and not (skip_first and r["frame"] == 0)]
        bpp = float(np.mean([r["bpp"] for r in rs]))
        for k in curves:
            curves[k].append((bpp, float(np.mean([r[f"psnr_{k}"] for r in rs]))))

    def bd(test: str, anchor: str) -> float:
        a, t = curves[anchor], curves[test]
        return bd_rate([p[0] for p in a], [p[1] for p in a], [p[0] for p in t], [p[1] for p in t])

    first_q = [r for r in rows if r["quality"] == qs[0]]
    drift = [r["psnr_seq"] - r["psnr_base"] for r in sorted(first_q, key=lambda r: r["frame"])]
    half = len(drift) // 2
    return {
        "curves": {k: [{"bpp": b, "psnr": p} for b, p in v] for k, v in curves.items()},
        "bd_rate_seq_vs_base": bd("seq", "base"),
        "bd_rate_seq_vs_true": bd("seq", "true"),
        "bd_rate_true_vs_base": bd("true", "base"),
        # the gain over the base in the first and the second half of the sequence, at the
        # lowest quality: equal halves mean no error builds up along the sequence
        "gain_first_half_db": float(np.mean(drift[:half])) if half else math.nan,
        "gain_second_half_db": float(np.mean(drift[half:])) if drift else math.nan,
        "frames": len(first_q),
    }


def plot_gain(rows: list[dict], path, title: str) -> None:
    """PSNR gain over the base decode along the sequence, per quality: fed forward (solid) and
    with the true previous frames (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wzcodec.eval.outputs import save_figure

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, q in enumerate(sorted({r["quality"] for r in rows})):
        rs = sorted((r for r in rows if r["quality"] == q), key=lambda r: r["frame"])
        t = [r["frame"] for r in rs]
        bpp = np.mean([r["bpp"] for r in rs])
        color = f"C{i % 10}"
        ax.plot(t, [r["psnr_seq"] - r["psnr_base"] for r in rs], color=color,
                label=f"q{q:g} ({bpp:.2f} bpp)")  # fmt: skip
        ax.plot(t, [r["psnr_true"] - r["psnr_base"] for r in rs], color=color, ls="--", lw=0.8)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("frame")
    ax.set_ylabel("PSNR gain over the base decode (dB)")
    ax.set_title(f"{title}: decoded frames fed forward (solid), true frames (dashed)")
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, path)
