"""The side image must help the shipped side-information models, and a short training run
from their weights must keep it so: decoding with the true y beats an unrelated y and no y.
Slow (minutes): `make test-slow`."""

from __future__ import annotations

import json

import numpy as np
import pytest

import wzcodec
from tests.conftest import tiny_config
from wzcodec.codec import WEIGHTS_DIR
from wzcodec.data.protocols import paper_view
from wzcodec.metrics import psnr
from wzcodec.training import train
from wzcodec.weights import export

MARGIN_DB = 0.05


def _gaps(codec, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    data = codec.encode(x, quality=1)
    true_y = psnr(x, codec.decode(data, side=y))
    unrelated = psnr(x, codec.decode(data, side=np.ascontiguousarray(y[::-1, ::-1])))
    missing = psnr(x, codec.decode(data))
    return true_y - unrelated, true_y - missing


@pytest.mark.slow
@pytest.mark.parametrize(
    "model",
    [
        "atn",
        "dsin",
        pytest.param(
            "ndic",
            marks=pytest.mark.xfail(
                strict=True,
                reason="ndic's unaligned w gives < 0.03 dB at native disparities (experiments.md)",
            ),
        ),
    ],
)
def test_true_side_image_beats_unrelated_and_missing_after_short_training(
    tmp_path, tiny_stereo, motorcycle, model
):
    shipped = WEIGHTS_DIR / f"{model}.safetensors"
    meta = json.loads(shipped.with_suffix(".json").read_text())
    cfg = tiny_config(
        tmp_path / "c.yaml",
        tiny_stereo,
        model=model,
        model_config=meta["config"],
        init_from=str(shipped),
        lambdas=meta["lambdas"],
        steps=40,
        crop=128,
        batch=4,
        lr=1e-5,
        alpha=1.0 if model != "dsin" else 0.0,
        freeze=["base."] if model == "dsin" else [],
        bf16=True,
        val_every=40,
        log_every=20,
    )
    x, y = (np.ascontiguousarray(a[100:292, 150:534]) for a in motorcycle)
    before = _gaps(wzcodec.load(model), x, y)
    train(cfg, tmp_path / "run", progress=False)
    weights = export(tmp_path / "run/checkpoint.pt", tmp_path / "w")  # dsin: base copied in
    after = _gaps(wzcodec.load(model, weights=weights), x, y)
    print(f"{model}: gap to unrelated / no y: shipped {before}, after 40 steps {after} dB")
    assert min(before) > MARGIN_DB and min(after) > MARGIN_DB


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ndic_learns_to_read_y_from_scratch_in_its_papers_protocol(
    tmp_path, tiny_stereo, motorcycle, seed
):
    """NDIC's side path works where NDIC was published: whole images resized to 128x256, where
    a stereo disparity is about one latent pixel. A few hundred steps from scratch on the
    bundled pairs, and the held-out motorcycle pair decodes better with its true y than with
    an unrelated y or none. (At native resolution the shipped ndic gets < 0.03 dB from y, the
    xfail above: its w reaches D_x unaligned, at 1/16 scale.)"""
    cfg = tiny_config(
        tmp_path / "c.yaml",
        tiny_stereo,
        model="ndic",
        model_config={"N": 64, "M": 96, "levels": 3},
        train_protocol="paper",
        val_protocol="paper",
        crop=[128, 256],
        batch=4,
        steps=300,
        lr=2e-4,
        lr_warmup=20,
        alpha=1.0,
        beta=1.0,
        bf16=True,
        seed=seed,
        val_every=300,
        log_every=50,
    )
    train(cfg, tmp_path / "run", progress=False)
    codec = wzcodec.load("ndic", weights=export(tmp_path / "run/checkpoint.pt", tmp_path / "w"))
    x, y = (paper_view(a, "mb") for a in motorcycle)
    gaps = _gaps(codec, x, y)
    print(f"ndic from scratch, paper protocol, seed {seed}: gap to unrelated / no y {gaps} dB")
    assert min(gaps) > MARGIN_DB
