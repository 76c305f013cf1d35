"""``wz eval`` (``eval/run.py``, ``eval/results.py``, ``eval/outputs.py``)."""

from __future__ import annotations

import csv
import json
import os

import pytest

from tests.conftest import run_cli

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("models", ["hyperprior,jpeg"])
def test_eval_writes_csv_summary_bd_rate_and_plots(tmp_path, tiny_stereo, models):
    out_dir = str(tmp_path / "ev")
    args = ["--split", "test", "--models", models, "--qualities", "1,3,6", "--out", out_dir]
    code, out, err = run_cli("eval", "--data", f"stereo:{tiny_stereo}", *args)
    assert code == 0, err
    with open(tmp_path / "ev/per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * (3 + 9)  # 2 pairs x (3 learned rate points + 9 JPEG qualities)
    summary = json.loads((tmp_path / "ev/summary.json").read_text())
    assert summary["bd_rate"]["psnr"]["all"]["hyperprior"] == pytest.approx(0.0, abs=1e-6)
    for name in ("rd_psnr.png", "rd_msssim.png", "bd_rate.csv"):
        assert (tmp_path / "ev" / name).stat().st_size > 0
    assert "BD-rate vs hyperprior" in out


def test_eval_merge_adds_a_method_to_an_earlier_run_and_refuses_other_images(tmp_path, tiny_stereo):
    data = ["--data", f"stereo:{tiny_stereo}", "--split", "test"]
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    code, _, err = run_cli(
        "eval", *data, "--models", "hyperprior", "--qualities", "1,6", "--out", first
    )
    assert code == 0, err
    code, _, err = run_cli("eval", *data, "--models", "jpeg", "--merge", first, "--out", second)
    assert code == 0, err
    with open(tmp_path / "second/per_image.csv") as f:
        models = [r["model"] for r in csv.DictReader(f)]
    assert models.count("hyperprior") == 2 * 2 and models.count("jpeg") == 2 * 9
    bd = json.loads((tmp_path / "second/summary.json").read_text())["bd_rate"]["psnr"]["all"]
    assert set(bd) == {"hyperprior", "jpeg"}
    other = str(tmp_path / "other")
    code, _, err = run_cli(
        "eval", "--data", f"stereo:{tiny_stereo}", "--split", "train", "--models", "jpeg",
        "--merge", first, "--out", other,
    )  # fmt: skip
    assert code == 2 and "cannot merge" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "other").exists()


def test_eval_with_worker_processes_gives_the_same_rows(tiny_stereo, monkeypatch):
    from wzcodec.eval.run import evaluate, load_pairs

    monkeypatch.setattr("wzcodec.eval.run.os.cpu_count", lambda: 4)  # else capped to 1 here
    pairs = load_pairs(f"stereo:{tiny_stereo}", "test", "native")
    kw = {"models": ["jpeg", "hyperprior"], "qualities": [2], "progress": False}
    one, two = evaluate(pairs, **kw), evaluate(pairs, workers=2, **kw)

    def timeless(rows):  # JSON, so that NaN (no estimate for JPEG) equals NaN
        skip = ("_s", "bpp_est")
        return json.dumps([{k: v for k, v in r.items() if not k.endswith(skip)} for r in rows])

    assert timeless(one) == timeless(two)  # the bytes, PSNR and MS-SSIM: exactly
    # The likelihood estimate is float arithmetic whose rounding depends on the thread count
    # (a worker runs one thread): equal to float32 precision, not bit for bit.
    est = [(a["bpp_est"], b["bpp_est"]) for a, b in zip(one, two, strict=True)]
    assert all(a == pytest.approx(b, rel=1e-5, nan_ok=True) for a, b in est)
    assert [r["model"] for r in one][-2:] == ["hyperprior", "hyperprior"]


def test_eval_source_filter_and_published_reference_curves(tmp_path, tiny_stereo):
    ref = tmp_path / "ref.csv"
    ref.write_text("# published\nmethod,bpp,psnr\nbook,0.5,30\nbook,1.0,33\nbook,2.0,36\n")
    out_dir = tmp_path / "ev"
    code, _, err = run_cli(
        "eval", "--data", f"stereo:{tiny_stereo}", "--split", "all", "--source", "oakd",
        "--models", "jpeg", "--anchor", "jpeg", "--reference", str(ref), "--out", str(out_dir),
    )  # fmt: skip
    assert code == 0, err
    with open(out_dir / "per_image.csv") as f:
        assert {r["image"].split("/")[0] for r in csv.DictReader(f)} == {"oakd"}
    summary = json.loads((out_dir / "summary.json").read_text())
    assert [p["psnr"] for p in summary["summary"]["all"]["book (published)"]] == [30, 33, 36]
    assert set(summary["summary"]["all"]) == {"jpeg", "book (published)"}
    assert "book (published)" in summary["bd_rate"]["psnr"]["all"]
    code, _, err = run_cli(
        "eval", "--data", f"stereo:{tiny_stereo}", "--models", "jpeg",
        "--reference", str(tmp_path / "missing.csv"), "--out", str(out_dir),
    )  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_oracle_side_mode_gives_x_itself_and_every_side_mode_is_a_cli_choice():
    import numpy as np

    from wzcodec.cli import build_parser
    from wzcodec.eval.run import SIDE_MODES, side_image

    x, y = np.zeros((8, 40, 3), np.uint8), np.full((8, 40, 3), 200, np.uint8)
    pairs = [("p0", x, y), ("p1", y, x)]
    assert side_image(pairs, 0, "oracle") is x and side_image(pairs, 0, "true") is y
    for mode in SIDE_MODES:
        args = build_parser().parse_args(["eval", "--data", "d", "--out", "o", "--side", mode])
        assert args.side == mode
