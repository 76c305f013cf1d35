"""``report.html``: one self-contained page per eval run, checked in a real browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from .conftest import run_cli

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Chromium (.ci/run) and sets this, so there the browser test cannot be skipped
REQUIRED = os.environ.get("WZ_REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def run(tmp_path_factory, motorcycle):
    """A small eval of the user's own two folders (``pairs:``) with its report."""
    root = tmp_path_factory.mktemp("report")
    x, y = motorcycle
    for d in ("L", "R"):
        (root / d).mkdir()
    for k, (top, left) in enumerate(((60, 100), (250, 380))):
        Image.fromarray(x[top : top + 160, left : left + 256]).save(root / f"L/p{k}.png")
        Image.fromarray(y[top : top + 160, left : left + 256]).save(root / f"R/p{k}.png")
    out = root / "run"
    code, _, err = run_cli(
        "eval", "--data", f"pairs:{root / 'L'},{root / 'R'}", "--models", "avif,heic,avif-si",
        "--qualities", "10,20,30", "--anchor", "avif", "--no-estimate", "--out", str(out),
    )  # fmt: skip
    assert code == 0, err
    return out


def test_report_is_one_file_that_needs_no_network(run):
    page = (run / "report.html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)  # nothing fetched
    assert page.count("data:image/png;base64,") >= 2 + 5  # 2 plots, crops and slider
    assert "avif-si" in page and "<select id='anchor'>" in page


def test_report_merge_keeps_it_current(run, motorcycle):
    code, _, err = run_cli(
        "eval", "--data", f"pairs:{run.parent / 'L'},{run.parent / 'R'}", "--models", "jpeg",
        "--anchor", "avif", "--no-estimate", "--merge", str(run), "--out", str(run),
    )  # fmt: skip
    assert code == 0, err
    page = (run / "report.html").read_text()
    assert '"jpeg"' in page and '"avif-si"' in page  # both runs' methods in the BD tables


@pytest.mark.skipif(not CHROMIUM and not REQUIRED, reason="chromium is not installed")
def test_report_renders_in_headless_chromium_without_errors(run, tmp_path):
    assert CHROMIUM, "WZ_REQUIRE_BROWSER=1 but no chromium on PATH"
    url = (run / "report.html").resolve().as_uri()
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr"]
    flags += ["--v=0", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert 'data-ok="1"' in body  # the page's own check: every image decoded
    assert int(re.search(r'data-images="(\d+)"', body).group(1)) >= 7
    assert "data-errors" not in body
    assert ":CONSOLE" not in dom.stderr, dom.stderr  # no console message, no uncaught error
    assert "<td" in dom.stdout.split('id="bd"')[1][:200]  # the script filled the BD table
    shot = tmp_path / "shot.png"
    run_ = subprocess.run(
        [*flags, "--window-size=1280,1600", f"--screenshot={shot}", url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run_.returncode == 0 and shot.exists(), run_.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert img.shape == (1600, 1280)
    assert img.std() > 20 and (img < 128).mean() > 0.01  # plots and text, not a blank page


def test_wz_report_rewrites_a_run_and_keeps_its_views(run):
    page = run / "report.html"
    page.unlink()
    code, _, err = run_cli("report", str(run), "--title", "again")
    assert code == 0, err
    text = page.read_text()
    assert "<title>again</title>" in text and "slider" in text  # views kept in views.json
    code, _, err = run_cli("report", str(run.parent / "nope"))
    assert code == 2 and "not a wz eval run folder" in err


def test_wz_bd_rate_prints_every_method_against_any_anchor(run):
    code, out, err = run_cli("bd-rate", "heic", str(run), "--max-bpp", "0.5")
    assert code == 0, err
    assert out.startswith("BD-rate vs heic (all, points <= 0.5 bpp)")
    assert {line.split()[0] for line in out.splitlines()[1:]} >= {"avif", "avif-si", "heic"}
    code, _, err = run_cli("bd-rate", "nothing", str(run))
    assert code == 2 and "no nothing rows" in err


def test_wz_plot_and_equal_bpp_read_a_run(run, tmp_path):
    code, out, err = run_cli("equal-bpp", str(run), "avif-si", "avif")
    assert code == 0, err
    assert "q20: 2 images" in out
    png = tmp_path / "gain.png"
    code, _, err = run_cli("plot", str(run), "--models", "avif-si", "--gain", "--out", str(png))
    assert code == 0 and png.stat().st_size > 0, err
    code, _, err = run_cli("plot", str(run), "--models", "nope", "--out", str(png))
    assert code == 2 and "no rows of nope" in err


def test_report_plots_each_distinct_group_a_low_rate_zoom_and_the_gain_and_shows_a_seam(run):
    page = (run / "report.html").read_text()
    alts = re.findall(r"<img class=\"plot\" alt=\"([^\"]+)\"", page)
    # both pairs are colour: "all" is the only distinct group
    assert alts == ["PSNR [all]", "PSNR, low rates [all]", "MS-SSIM [all]",
                    "gain over the base decode"]  # fmt: skip
    assert "<div class='seam'></div>" in page and "seam.style.left" in page
