"""Tables from eval runs (``eval/tables.py``): equal-bpp, side gaps, BD-rate."""

from __future__ import annotations

import os

import pytest

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def test_equal_bpp_comparison_interpolates_the_other_curve_per_image(tmp_path):
    from wzcodec.eval import tables as mod

    rows = ["model,quality,image,bpp,psnr", "a,1,i,0.5,31", "a,2,i,3.0,40"]
    rows += ["b,10,i,0.2,28", "b,20,i,1.0,32"]
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    # at 0.5 bpp b interpolates to 29.5 dB: a wins by 1.5; a's 3.0 bpp is outside b's curve
    assert mod.compare(str(tmp_path / "p.csv"), "a", "b") == [(1.0, 1, 1, 1.5)]


def test_side_gap_table_compares_each_stress_run_with_the_true_y_on_its_own_images():
    from wzcodec.eval import tables as mod

    def row(model, image, psnr):
        return {"model": model, "quality": 1.0, "image": image, "psnr": psnr}

    # the true-y run has an image (c) the stress runs did not code: it must not count
    true = [row("atn", "a", 30.0), row("atn", "b", 32.0), row("atn", "c", 10.0)]
    runs = {
        "other": [row("atn", "a", 29.0), row("atn", "b", 31.5)],
        "none": [row("atn", "a", 30.0), row("atn", "b", 32.0)],
    }
    (r,) = mod.side_gaps(true, runs)
    assert r["true"] == 31.0 and r["other"] == 30.25 and r["other_gap"] == 0.75
    table = mod.markdown([r], ["other", "none"])
    assert "| atn, q1 | 31.00 | 30.25 (gap +0.750 dB) |" in table


def test_bd_rate_table_takes_each_method_from_the_first_run_and_refuses_other_images():
    from wzcodec.errors import WzError
    from wzcodec.eval import tables as mod

    a = [{"model": "atn", "image": "i", "psnr": 30.0}, {"model": "hyperprior", "image": "i"}]
    b = [{"model": "atn", "image": "i", "psnr": 29.0}, {"model": "heic", "image": "i"}]
    rows = mod.combined_rows([a, b])
    assert [r["model"] for r in rows] == ["atn", "hyperprior", "heic"]
    assert rows[0]["psnr"] == 30.0
    with pytest.raises(WzError, match="cannot merge"):
        mod.combined_rows([a, [{"model": "heic", "image": "j"}]])
