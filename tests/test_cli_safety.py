"""The command line keeps a user's files safe, says every lossy step, and answers at once:
no input overwritten, no output replaced without -f, stdin / stdout, folders made, refusals
before PyTorch loads, Ctrl-C within a second."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

import wzcodec
from tests.conftest import run_cli


@pytest.fixture()
def x_png(tmp_path, motorcycle):
    path = tmp_path / "x.png"
    Image.fromarray(np.ascontiguousarray(motorcycle[0][:96, :128])).save(path)
    return path


def _wz(*args: str, stdin: bytes | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "wzcodec", *args], input=stdin, capture_output=True, cwd=cwd
    )


def test_an_existing_output_is_kept_unless_forced(tmp_path, x_png):
    out = tmp_path / "x.wz"
    out.write_bytes(b"precious")
    code, _, err = run_cli("encode", str(x_png), "-o", str(out))
    assert code == 2 and "exists; give -f" in err and out.read_bytes() == b"precious"
    code, _, err = run_cli("encode", str(x_png), "-o", str(out), "-f")
    assert code == 0, err
    assert wzcodec.read_header(out.read_bytes()).model == "heic-si"  # the default model


def test_an_output_folder_ending_in_a_slash_is_made_for_one_input_or_many(tmp_path, x_png):
    code, _, err = run_cli("encode", str(x_png), "-o", f"{tmp_path}/new/")
    assert code == 0, err
    assert (tmp_path / "new" / "x.wz").is_file()
    code, _, err = run_cli("decode", str(tmp_path / "new" / "x.wz"), "-o", f"{tmp_path}/dec/a/")
    assert code == 0, err
    assert (tmp_path / "dec" / "a" / "x.png").is_file()
    frames = tmp_path / "frames"
    frames.mkdir()
    for k in range(3):
        Image.open(x_png).save(frames / f"f{k}.png")
    code, _, err = run_cli("encode", str(frames), "-o", f"{tmp_path}/coded/", "--quality", "20")
    assert code == 0, err
    code, _, err = run_cli("decode-seq", str(tmp_path / "coded"), "-o", str(tmp_path / "seq"))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "seq").iterdir()) == ["f0.png", "f1.png", "f2.png"]


def test_dash_reads_stdin_and_writes_stdout_with_status_on_stderr(tmp_path, x_png):
    r = _wz("encode", "-", "-o", "-", "--quality", "20", stdin=x_png.read_bytes())
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"WZC") and b"bytes" in r.stderr
    r2 = _wz("decode", "-", "-o", "-", stdin=r.stdout)
    assert r2.returncode == 0, r2.stderr
    (tmp_path / "back.png").write_bytes(r2.stdout)
    assert Image.open(tmp_path / "back.png").size == (128, 96)
    r3 = _wz("info", "-", stdin=r.stdout)
    assert r3.returncode == 0 and b"heic-si" in r3.stdout


def test_a_plain_heic_output_is_the_cameras_file_and_decodes_with_y(tmp_path, x_png):
    code, _, err = run_cli("encode", str(x_png), "-o", str(tmp_path / "cam.heic"))
    assert code == 0, err
    data = (tmp_path / "cam.heic").read_bytes()
    assert not data.startswith(b"WZC")
    code, _, err = run_cli(
        "decode", str(tmp_path / "cam.heic"), "--model", "heic-si", "--side", str(x_png),
        "-o", str(tmp_path / "out.png"),
    )  # fmt: skip
    assert code == 0, err


_PROBE = """
import sys, time
t = time.perf_counter()
from wzcodec.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(code, "torch" in sys.modules, round(time.perf_counter() - t, 3), file=sys.stderr)
"""


def _probe(args, cwd) -> tuple[str, bool, float]:
    r = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, cwd=cwd
    )
    code, torch_loaded, seconds = r.stderr.strip().splitlines()[-1].split()
    return code, torch_loaded == "True", float(seconds)


@pytest.mark.parametrize(
    "args, code",
    [
        (["encode", "x.png", "-o", "q.wz", "--quality", "0"], "2"),
        (["encode", "x.png", "-o", "m.wz", "--model", "nope"], "2"),
        (["encode", "x.png", "-o", "b.wz", "--model", "atn", "--bpp", "-3"], "2"),
        (["encode", "x.png", "-o", "x.png", "--model", "atn"], "2"),
        (["encode", "big.png", "-o", "big.wz", "--model", "atn"], "2"),
        (["encode", "not.png", "-o", "n.wz", "--model", "atn"], "2"),
        (["encode", "x.png", "-o", "nodir/x.wz", "--model", "atn"], "2"),
        (["encode", "x.png", "-o", "ok.wz", "--model", "heic-si"], "0"),
        (["encode", "x.png", "-o", "ok.heic", "--model", "heic-si"], "0"),
        (["decode", "ok.wz", "-o", "ok.png"], "0"),
        (["info", "ok.wz"], "0"),
        (["models"], "0"),
    ],
)
def test_refusals_and_the_camera_side_answer_without_pytorch(tmp_path, x_png, args, code):
    """Refusals come before any model loads (target: well under a second); a HEIC encode, a
    decode without y, `wz info` and `wz models` never import PyTorch."""
    Image.new("L", (16385, 2)).save(tmp_path / "big.png")
    (tmp_path / "not.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(30))
    if args[0] in ("decode", "info"):
        assert run_cli("encode", str(x_png), "-o", str(tmp_path / "ok.wz"))[0] == 0
    got, torch_loaded, seconds = _probe(args, tmp_path)
    assert (got, torch_loaded) == (code, False)
    assert seconds < 2.0  # typically 0.1-0.4 s; loose for a loaded CI machine


def test_unwritable_output_folder_is_refused_before_the_work(tmp_path, x_png):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("permissions are not enforced for this user")
        code, _, err = run_cli("encode", str(x_png), "-o", str(ro / "x.wz"), "--model", "atn")
        assert code == 2 and "not writable" in err and str(ro) in err
    finally:
        ro.chmod(0o700)


def test_an_unreachable_rate_is_refused_or_with_or_smallest_written_with_a_warning(tmp_path, x_png):
    code, _, err = run_cli("encode", str(x_png), "-o", str(tmp_path / "a.wz"), "--bpp", "0.01")
    assert code == 2 and "smallest file is" in err and "bpp" in err
    assert not (tmp_path / "a.wz").exists()
    code, _, err = run_cli(
        "encode", str(x_png), "-o", str(tmp_path / "a.wz"), "--bpp", "0.01", "--or-smallest"
    )
    assert code == 0 and "wz: warning:" in err and (tmp_path / "a.wz").exists()
    assert wzcodec.read_header((tmp_path / "a.wz").read_bytes()).quality == 1


@pytest.mark.parametrize(
    "make, said",
    [
        (lambda a: Image.fromarray(a).convert("RGBA"), "alpha channel dropped"),
        (
            lambda a: Image.fromarray(np.asarray(Image.fromarray(a).convert("L"), np.uint16) * 257),
            "16-bit samples reduced to 8 bits",
        ),
        (lambda a: Image.fromarray(a).convert("CMYK"), "CMYK converted to RGB"),
    ],
)
def test_every_lossy_input_conversion_is_said_in_one_line(tmp_path, x_png, make, said):
    img = make(np.asarray(Image.open(x_png)))
    src = tmp_path / ("in.jpg" if img.mode == "CMYK" else "in.png")
    img.save(src)
    code, _, err = run_cli("encode", str(src), "-o", str(tmp_path / "o.wz"))
    assert code == 0
    notes = [line for line in err.splitlines() if said in line]
    assert len(notes) == 1 and notes[0].startswith("wz: warning:"), err


def test_animated_gif_frames_after_the_first_are_said_dropped(tmp_path, x_png):
    first = Image.open(x_png).convert("P")
    others = [first.rotate(180), first.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    first.save(tmp_path / "a.gif", save_all=True, append_images=others)
    code, _, err = run_cli("encode", str(tmp_path / "a.gif"), "-o", str(tmp_path / "a.wz"))
    assert code == 0 and "frames; only the first is coded" in err


def test_a_float_image_in_0_255_is_refused_not_coded_as_white(motorcycle):
    codec = wzcodec.load("heic-si")
    x = motorcycle[0][:64, :64].astype(np.float64)
    with pytest.raises(wzcodec.WzError, match=r"values in 0\.\.1"):
        codec.encode(x)
    assert codec.encode(x / 255.0) == codec.encode(motorcycle[0][:64, :64])
    assert repr(codec).startswith("Codec('heic-si', quality=30")


@pytest.mark.parametrize(
    "make, said",
    [
        (lambda p: Image.new("L", (65536, 1)).save(p), "a side longer than the supported 16384"),
        (lambda p: p.write_bytes(_TRUNCATED), "truncated"),
    ],
)
def test_unreadable_images_are_named_in_words(tmp_path, make, said):
    p = tmp_path / "in.png"
    make(p)
    code, _, err = run_cli("encode", str(p), "-o", str(tmp_path / "o.wz"))
    assert code == 2 and said in err and "Error" not in err, err


def _truncated_png() -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        buf, "PNG"
    )
    return buf.getvalue()[:3000]


_TRUNCATED = _truncated_png()


def test_version_bare_wz_and_models_say_what_there_is():
    code, out, _ = run_cli()
    assert code == 0 and "encode" in out and "models" in out
    r = _wz("--version")
    assert r.returncode == 0 and r.stdout.decode().strip() == f"wz {wzcodec.__version__}"
    code, out, _ = run_cli("models")
    for name in ("heic-si", "avif-si", "heic-pf", "avif-pf", "atn", "hyperprior", "jpeg"):
        assert f"\n{name} " in out
    assert "default: heic-si" in out


def test_ctrl_c_stops_an_encode_inside_the_codec_within_a_second(tmp_path):
    """x265 at its placebo preset holds the interpreter in C for seconds on this image; Ctrl-C
    must still end the process at once (the shell's status 130), with no file left behind."""
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (1536, 2048, 3), np.uint8)).save(tmp_path / "n.bmp")
    out = tmp_path / "out"
    p = subprocess.Popen(
        [sys.executable, "-m", "wzcodec", "encode", str(tmp_path / "n.bmp"), "-o", f"{out}/",
         "--model", "heic-slow", "--quality", "95"],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    time.sleep(3.0)  # past start-up, into the encoder (about 11 s of it on one core)
    assert p.poll() is None, "the encode ended before it could be interrupted"
    t = time.perf_counter()
    p.send_signal(signal.SIGINT)
    code = p.wait(timeout=10)
    assert time.perf_counter() - t < 1.0
    assert code in (130, -signal.SIGINT)  # 130 as a shell reports either
    assert not out.exists() or list(out.iterdir()) == []


def test_ctrl_c_while_outputs_are_written_leaves_no_temporary_file(tmp_path, monkeypatch, x_png):
    from wzcodec import files

    def interrupted(path, data):
        with files.atomic_open(path) as f:
            f.write(data[:10])
            raise KeyboardInterrupt

    monkeypatch.setattr(files, "atomic_write_bytes", interrupted)
    code, _, _ = run_cli("encode", str(x_png), "-o", str(tmp_path / "a.wz"))
    assert code == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]
