"""``wz`` end to end, and every error a user can cause: one line on stderr, exit 2, no output."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli


@pytest.fixture(scope="module")
def files(tmp_path_factory, motorcycle):
    d = tmp_path_factory.mktemp("cli")
    x, y = motorcycle
    Image.fromarray(x).save(d / "x.png")
    Image.fromarray(y).save(d / "y.png")
    Image.fromarray(y[:200, :300]).save(d / "small.png")
    (d / "not_image.png").write_bytes(b"this is not an image at all")
    (d / "empty.png").write_bytes(b"")
    code, _, err = run_cli(
        "encode", str(d / "x.png"), "-o", str(d / "x.wz"), "--quality", "2", "--model", "hyperprior"
    )
    assert code == 0, err
    return d


def test_encode_decode_info_round_trip(files):
    code, out, err = run_cli(
        "decode", str(files / "x.wz"), "--side", str(files / "y.png"), "-o", str(files / "r.png")
    )
    assert code == 0, err
    rec = np.asarray(Image.open(files / "r.png"))
    assert rec.shape == (500, 741, 3)
    code, out, _ = run_cli("info", str(files / "x.wz"))
    assert code == 0
    assert "hyperprior" in out and "741x500" in out and "bpp" in out and "quality:     2" in out


def _assert_user_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["encode", "{d}/missing.png", "-o", "{d}/out.wz"], "no such file"),
        (["encode", "{d}/not_image.png", "-o", "{d}/out.wz"], "not a readable image"),
        (["encode", "{d}/empty.png", "-o", "{d}/out.wz"], "not a readable image"),
        (["decode", "{d}/x.wz", "-o", "{d}/x.wz"], "is an input; refusing to overwrite it"),
        (["encode", "{d}/x.png", "-o", "{d}/x.png"], "is an input; refusing to overwrite it"),
        (["decode", "{d}/x.wz", "-o", "{d}/y.png"], "exists; give -f to replace it"),
        (["decode", "{d}/x.wz", "-o", "{d}/out.txt"], "unknown output type '.txt'"),
        (["encode", "{d}/x.png", "-o", "{d}/out.avif"], "unknown output type '.avif'"),
        (["encode", "{d}/x.png", "-o", "{d}/out.wz", "--bpp", "0"], "above 0"),
        (["encode", "{d}/x.png", "-o", "{d}/out.wz", "--bpp", "-1"], "above 0"),
        (["encode", "{d}/x.png", "-o", "{d}/out.wz", "--bpp", "nan"], "above 0"),
        (
            ["encode", "{d}/x.png", "-o", "{d}/out.wz", "--bpp", "0.2", "--quality", "3"],
            "not both",
        ),
        (["encode", "{d}/x.png", "-o", "{d}/out.wz", "--bpp", "0.001"], "smallest file is"),
        (["encode", "{d}/x.png", "{d}/y.png", "-o", "-"], "standard output takes one input"),
        (["encode", "{d}", "-o", "{d}/out.wz"], "inputs need a folder as output"),  # its images
        (["encode", "{d}/x.png", "-o", "{d}/no/such/dir/out.wz"], "does not exist"),
        (["encode", "{d}/x.png", "-o", "{d}/out.wz", "--model", "nope"], "unknown model"),
        (["encode", "{d}/x.png", "-o", "{d}/out.wz", "--quality", "101"], "between 1 and 100"),
        (
            ["encode", "{d}/x.png", "-o", "{d}/out.wz", "--quality", "9", "--model", "atn"],
            "between 1 and 6",
        ),
        (["decode", "{d}/x.png", "-o", "{d}/out.png"], "not a .wz file"),
        (["decode", "{d}/missing.wz", "-o", "{d}/out.png"], "no such file"),
        (
            ["decode", "{d}/x.wz", "--side", "{d}/small.png", "-o", "{d}/out.png"],
            "side image is 300x200",
        ),
        (["decode", "{d}/x.wz", "--side", "{d}/missing.png", "-o", "{d}/out.png"], "no such file"),
        (["decode", "{d}/x.wz", "{d}/x.wz", "-o", "{d}/out.png"], "need a folder as output"),
        (["encode", "{d}/x.png", "{d}/x.png", "-o", "{d}"], "would both be written"),
        (
            ["decode", "{d}/x.wz", "{d}/x.wz", "-o", "{d}"] + ["--side", "{d}/y.png"] * 3,
            "3 side images for 2 inputs",
        ),
        (["info", "{d}/not_image.png"], "bad magic"),
        (["encode", "{d}/x.png"], "required"),
    ],
)
def test_user_errors_exit_2_with_one_line_and_no_output(files, args, fragment):
    argv = [a.format(d=files) for a in args]
    code, _, err = run_cli(*argv)
    _assert_user_error(code, err, fragment)
    assert not (files / "out.wz").exists() and not (files / "out.png").exists()


def test_several_files_code_into_a_folder_as_each_would_alone(files, tmp_path):
    enc, dec = tmp_path / "enc", tmp_path / "dec"
    enc.mkdir()
    dec.mkdir()
    Image.open(files / "y.png").save(tmp_path / "y.png")
    args = ["--quality", "2", "--model", "atn"]  # a model that reads y: sides must pair right
    code, _, err = run_cli(
        "encode", str(files / "x.png"), str(tmp_path / "y.png"), "-o", str(enc), *args
    )
    assert code == 0, err
    assert sorted(p.name for p in enc.iterdir()) == ["x.wz", "y.wz"]
    code, _, err = run_cli("encode", str(files / "x.png"), "-o", str(tmp_path / "x.wz"), *args)
    assert code == 0, err
    assert (enc / "x.wz").read_bytes() == (tmp_path / "x.wz").read_bytes()
    side = str(files / "y.png")
    code, _, err = run_cli("decode", str(enc / "x.wz"), "--side", side, "-o", str(tmp_path))
    assert code == 0, err  # one file into a folder: <folder>/x.png
    alone = np.asarray(Image.open(tmp_path / "x.png"))
    code, _, err = run_cli("decode", str(enc / "x.wz"), "-o", str(tmp_path / "none.png"))
    assert code == 0, err
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "none.png")), alone)
    for sides in (["--side", side], ["--side", side, "--side", str(files / "x.png"), "-f"]):
        code, _, err = run_cli(
            "decode", str(enc / "x.wz"), str(enc / "y.wz"), "-o", str(dec), *sides
        )
        assert code == 0, err
        assert sorted(p.name for p in dec.iterdir()) == ["x.png", "y.png"]
        assert np.array_equal(np.asarray(Image.open(dec / "x.png")), alone)


def test_a_bad_file_among_several_leaves_no_output_at_all(files, tmp_path):
    code, _, err = run_cli(
        "encode", str(files / "x.png"), str(files / "not_image.png"), "-o", str(tmp_path)
    )
    _assert_user_error(code, err, "not a readable image")
    (tmp_path / "bad.wz").write_bytes((files / "x.wz").read_bytes()[:40])
    code, _, err = run_cli(
        "decode", str(files / "x.wz"), str(tmp_path / "bad.wz"), "-o", str(tmp_path)
    )
    _assert_user_error(code, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.wz"]


@pytest.mark.parametrize("cut", [10, 40, 200, -1])
def test_truncated_bitstream_exits_2(files, cut):
    data = (files / "x.wz").read_bytes()
    (files / "cut.wz").write_bytes(data[:cut])
    code, _, err = run_cli("decode", str(files / "cut.wz"), "-o", str(files / "out.png"))
    _assert_user_error(code, err)
    assert "truncated" in err or "CRC" in err
    assert not (files / "out.png").exists()


def test_corrupted_bitstream_exits_2(files):
    data = bytearray((files / "x.wz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (files / "bad.wz").write_bytes(bytes(data))
    code, _, err = run_cli("decode", str(files / "bad.wz"), "-o", str(files / "out.png"))
    _assert_user_error(code, err, "CRC")


def test_unwritable_output_leaves_no_file(files, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, _, err = run_cli("encode", str(files / "x.png"), "-o", str(ro / "x.wz"))
        if code == 0:  # running as root: permissions do not apply
            pytest.skip("permissions are not enforced for this user")
        _assert_user_error(code, err)
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def test_console_entry_point_exit_code_is_2_in_a_real_process(files):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "wzcodec",
            "decode",
            str(files / "x.png"),
            "-o",
            str(files / "out.png"),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr


_NO_TORCH = """
import sys
from wzcodec.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(code, "torch" in sys.modules)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["encode", "--help"],
        ["encode", "missing.png", "-o", "out.wz"],
        ["decode", "missing.wz", "-o", "out.png"],
    ],
)
def test_help_and_missing_inputs_answer_without_importing_torch(tmp_path, args):
    """`wz --help` or a typo in a path must answer at once, not after PyTorch's ~5 s import."""
    r = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, *args], capture_output=True, text=True, cwd=tmp_path
    )
    code, torch_loaded = r.stdout.split()[-2:]
    assert code == ("0" if "--help" in args else "2")
    assert torch_loaded == "False"
    assert list(tmp_path.iterdir()) == []


def test_demo_prints_a_table_and_writes_reconstructions(tmp_path):
    code, out, err = run_cli("demo", "--out", str(tmp_path / "demo"))
    assert code == 0, err
    for method in ("avif q20", "avif-si q20", "heic q20", "heic-pf q20", "heic-si q20"):
        assert f"motorcycle      {method} " in out, out
    assert "saved" in out and "PSNR" in out
    assert err.splitlines()[0].startswith("loading")  # progress from the first second
    saved = [line.split()[6] for line in out.splitlines() if line.startswith("motorcycle")
             and "-si " in line]  # fmt: skip
    assert len(saved) == 2 and all(s.endswith("%") for s in saved)
    assert Image.open(tmp_path / "demo/demo.png").size[0] > 1000
    assert len(list((tmp_path / "demo").glob("*.png"))) == 3 * 6 + 1


@pytest.mark.parametrize(
    "name", ["hyperprior", "ndic", "atn", "dsin", "atn-paper", "dsin-atn", "avif-si", "heic-si"]
)
def test_every_model_round_trips_through_the_cli_with_and_without_side(tmp_path, motorcycle, name):
    """`wz encode --model NAME`, `wz info`, `wz decode --side` / without y, for all five models
    and dsin-atn with their shipped weights (atn-paper at its only size, 128x256)."""
    x, y = motorcycle
    h, w = (128, 256) if name == "atn-paper" else (120, 200)
    Image.fromarray(np.ascontiguousarray(x[:h, :w])).save(tmp_path / "x.png")
    Image.fromarray(np.ascontiguousarray(y[:h, :w])).save(tmp_path / "y.png")
    code, _, err = run_cli(
        "encode", str(tmp_path / "x.png"), "-o", str(tmp_path / "x.wz"), "--model", name,
        "--quality", "4",
    )  # fmt: skip
    assert code == 0, err
    code, out, err = run_cli("info", str(tmp_path / "x.wz"))
    assert code == 0 and f"model:       {name}" in out and f"{w}x{h}" in out, out + err
    outs = {}
    for side in ("y.png", None):
        rec = tmp_path / f"rec-{side}.png"
        args = ["--side", str(tmp_path / side)] if side else []
        code, _, err = run_cli("decode", str(tmp_path / "x.wz"), "-o", str(rec), *args)
        assert code == 0, err
        outs[side] = np.asarray(Image.open(rec))
        assert outs[side].shape == (h, w, 3)
    if name != "hyperprior":  # a side-information decoder reads y
        assert not np.array_equal(outs["y.png"], outs[None])


def test_bench_passes_its_options_through(tmp_path):
    code, out, _ = run_cli("bench", "--help")
    assert code == 0 and "--models" in out  # speed.py's own help, not wz's
    out_json = tmp_path / "speed.json"
    code, out, err = run_cli(
        "bench", "--models", "jpeg", "--sizes", "64x96", "--no-train", "--repeats", "1",
        "--out", str(out_json),
    )  # fmt: skip
    assert code == 0, err
    assert out_json.exists() and "64x96" in out
