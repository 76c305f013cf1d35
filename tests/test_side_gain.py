"""After a short training run on real stereo pairs, the side image must help: decoding with
the true y beats an unrelated y and no y. Slow (minutes): `make test-slow`."""

from __future__ import annotations

import numpy as np
import pytest

import wzcodec
from tests.conftest import tiny_config
from wzcodec.metrics import psnr
from wzcodec.train import export, train


@pytest.mark.slow
@pytest.mark.parametrize("model", ["atn", "ndic", "dsin"])
def test_true_side_image_beats_unrelated_and_missing_after_short_training(
    tmp_path, tiny_stereo, motorcycle, model
):
    cfg = tiny_config(
        tmp_path / "c.yaml",
        tiny_stereo,
        model=model,
        steps=400,
        crop=128,
        batch=8,
        lr=1e-3,
        lambdas=[0.001, 0.002],
        alpha=1.0,
        val_every=100,
        log_every=50,
        model_config={"N": 32, "M": 48, "levels": 2},
    )
    train(cfg, tmp_path / "run", progress=False)
    codec = wzcodec.load(
        model, quality=1, weights=export(tmp_path / "run/checkpoint.pt", tmp_path / "w")
    )
    x, y = (np.ascontiguousarray(a[100:292, 150:534]) for a in motorcycle)
    data = codec.encode(x, quality=1)
    true_y = psnr(x, codec.decode(data, side=y))
    unrelated = psnr(x, codec.decode(data, side=np.ascontiguousarray(y[::-1, ::-1])))
    missing = psnr(x, codec.decode(data))
    print(f"{model}: true y {true_y:.2f} dB, unrelated y {unrelated:.2f} dB, no y {missing:.2f} dB")
    assert true_y > unrelated + 0.1 and true_y > missing + 0.1
