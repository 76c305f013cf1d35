"""The rate gate of a receiver, fitted after training: how much of the receiver's residual to
add at a file's rate. α(bpp) is linear in log2 bpp between ``GATE_KNOTS``, one curve per file
format; ``calibrate`` codes held-out (or train) pairs for real at every quality and picks the
knot values that maximise the mean PSNR gain (``fit_gate``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from wzcodec import classical
from wzcodec.images import read_rgb
from wzcodec.receiver.gated import GATE_KNOTS
from wzcodec.training.base_decodes import to_chw


def serve_and_calibrate(model, cfg: dict, pairs: list, out_dir: Path) -> dict:
    """Set the ``serve`` matching settings, fit the gate on ``calibrate`` train pairs
    (gate.json); returns the config with ``serve`` folded into ``model_config``."""
    for k, v in cfg["serve"].items():
        setattr(model.receiver, k, v)
        model.config[k] = v
    if cfg["calibrate"]:
        n = int(cfg["calibrate"])
        real = [p for p in pairs if p[1] is not None]
        report = calibrate(model, real[:: max(1, len(real) // n)][:n], cfg["qualities"])
        (out_dir / "gate.json").write_text(json.dumps(report, indent=1))
    return {**cfg, "model_config": {**cfg["model_config"], **cfg["serve"]}}


@torch.no_grad()
def calibrate(model, pairs, qualities: dict[str, list[int]]) -> dict:
    """Fit the model's rate gate α(bpp) (linear in log2 bpp between ``GATE_KNOTS``, one
    curve per base): code every pair's x for real at every quality (the file's bpp), take R's
    residual r and the error e = x - x̂, and choose the knot values in [0, 1] that maximise
    the mean PSNR gain, mean over samples of 10·log10(|e|² / |e - α(bpp)·r|²), by coordinate
    search on a 0.05 grid (the gain of any α follows from |e|², <e, r> and |r|² alone); knots
    without data take the lowest fitted value below the data and 0 above it. Returns the
    curves, the per-quality gains on these pairs (dB, gated) and the samples."""
    model.eval()
    report: dict = {"knots_log2_bpp": GATE_KNOTS}
    samples: dict[str, list] = {}  # base -> [log2 bpp, |e|², <e,r>, |r|², q] (pixel means)
    for base, qs in qualities.items():
        samples[base] = []
        for x_path, y_path in pairs:
            x, y = read_rgb(x_path), read_rgb(y_path)
            if x.shape != y.shape:
                continue
            xt, yt = to_chw(x)[None], to_chw(y)[None]
            for q in qs:
                data = classical.encode(base, x, q)
                x_hat = to_chw(classical.decode(data))[None]
                bpp = 8 * len(data) / (x.shape[0] * x.shape[1])
                r, e = model.refine(x_hat, yt, bpp=bpp, gated=False) - x_hat, xt - x_hat
                stats = [(e * e).mean(), (e * r).mean(), (r * r).mean()]
                samples[base].append([math.log2(bpp), *(v.item() for v in stats), q])
    # one curve per file format: the settings of one format (avif, avif-s2) share it
    for fam in sorted({classical.family(b) for b in qualities}):
        mine = [b for b in qualities if classical.family(b) == fam]
        alpha = fit_gate(np.array([v for b in mine for v in samples[b]], dtype=float))
        model.gate_curve(fam).copy_(torch.from_numpy(alpha).float())
        for base in mine:
            gains = {}
            for q in qualities[base]:
                t = np.array([v for v in samples[base] if v[4] == q], dtype=float)
                gains[q] = float(gain_db(t, np.interp(t[:, 0], GATE_KNOTS, alpha)).mean())
            report[base] = {"alpha": alpha.tolist(), "gain_db": gains, "samples": samples[base]}
    model.train()
    return report


def gain_db(t: np.ndarray, a: np.ndarray) -> np.ndarray:
    """PSNR gain of x̂ + a·r per sample row [log2 bpp, |e|², <e,r>, |r|², ...]."""
    mse = np.maximum(t[:, 1] - 2 * a * t[:, 2] + a * a * t[:, 3], 1e-12)
    return 10 * np.log10(np.maximum(t[:, 1], 1e-12) / mse)


def fit_gate(t: np.ndarray, passes: int = 4) -> np.ndarray:
    """Knot values in [0, 1] maximising the mean gain of samples ``t`` (``calibrate``)."""
    knots = np.array(GATE_KNOTS)
    alpha = np.ones(len(knots))
    grid = np.linspace(0, 1, 21)
    for _ in range(passes):
        for k in range(len(knots)):
            best = []
            for v in grid:
                alpha[k] = v
                best.append(gain_db(t, np.interp(t[:, 0], knots, alpha)).mean())
            alpha[k] = grid[int(np.argmax(best))]
    # knots with no sample within half an octave: below the data, the lowest fitted value
    # (a coarser file than any seen still gets R); above it, 0 (nearer lossless: leave it)
    seen = np.flatnonzero([np.any(np.abs(t[:, 0] - k) < 0.5) for k in knots])
    alpha[: seen[0]] = alpha[seen[0]]
    alpha[seen[-1] + 1 :] = 0.0
    return alpha
