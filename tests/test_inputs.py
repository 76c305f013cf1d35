"""Every kind of image input is converted and coded, or refused with one line and exit 2."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.conftest import run_cli
from wzcodec.images import read_rgb


def _save(path, img: Image.Image, **kw):
    img.save(path, **kw)
    return str(path)


@pytest.fixture(scope="module")
def rgb(motorcycle):
    return np.ascontiguousarray(motorcycle[0][:96, :128])


@pytest.mark.parametrize(
    "mode, suffix",
    [
        ("L", ".png"),
        ("RGBA", ".png"),
        ("P", ".png"),
        ("I;16", ".png"),
        ("CMYK", ".jpg"),
        ("LA", ".png"),
        ("1", ".png"),
        ("RGB", ".webp"),
    ],
)
def test_image_modes_are_converted_to_rgb_and_round_trip(tmp_path, rgb, mode, suffix):
    base = Image.fromarray(rgb)
    if mode == "I;16":
        img = Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)
    else:
        img = base.convert(mode)
    src = _save(tmp_path / f"in{suffix}", img)
    a = read_rgb(src)
    assert a.shape == (96, 128, 3) and a.dtype == np.uint8
    if mode == "I;16":  # 16-bit is scaled to 8 bits, not clipped
        assert abs(int(a.mean()) - int(np.asarray(base.convert("L")).mean())) <= 1
    code, _, err = run_cli("encode", src, "-o", str(tmp_path / "o.wz"))
    assert code == 0, err
    code, _, err = run_cli("decode", str(tmp_path / "o.wz"), "-o", str(tmp_path / "o.png"))
    assert code == 0, err
    assert Image.open(tmp_path / "o.png").size == (128, 96)


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (63, 65)])
def test_images_smaller_than_one_latent_block_round_trip(tmp_path, rgb, shape):
    src = _save(
        tmp_path / "s.png", Image.fromarray(np.ascontiguousarray(rgb[: shape[0], : shape[1]]))
    )
    for model in ("hyperprior", "heic-si"):
        coded, decoded = tmp_path / f"{model}.wz", str(tmp_path / f"{model}.png")
        assert run_cli("encode", src, "-o", str(coded), "--model", model)[0] == 0
        assert run_cli("decode", str(coded), "-o", decoded)[0] == 0
        assert Image.open(decoded).size == (shape[1], shape[0])


def _refused(code: int, err: str, fragment: str) -> None:
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err


def test_image_past_the_size_limit_is_refused_before_decoding(tmp_path):
    src = _save(tmp_path / "big.png", Image.new("L", (5000, 4000)))
    code, _, err = run_cli("encode", src, "-o", str(tmp_path / "big.wz"))
    _refused(code, err, "20.0 Mpx: more than the supported 16.8 Mpx")
    assert not (tmp_path / "big.wz").exists()


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda p: p.write_bytes(b""), "not a readable image"),
        (lambda p: p.write_bytes(b"GIF89a" + b"\0" * 20), "not a readable image"),
        (lambda p: p.write_text("hello"), "not a readable image"),
        (lambda p: p.mkdir(), "directory"),
        (lambda p: None, "no such file"),
    ],
)
def test_unusable_inputs_are_refused(tmp_path, make, fragment):
    p = tmp_path / "in.png"
    make(p)
    code, _, err = run_cli("encode", str(p), "-o", str(tmp_path / "o.wz"))
    _refused(code, err, fragment)
    assert not (tmp_path / "o.wz").exists()


def test_side_image_with_other_channels_is_converted_but_other_size_refused(tmp_path, rgb):
    src = _save(tmp_path / "x.png", Image.fromarray(rgb))
    assert run_cli("encode", src, "-o", str(tmp_path / "x.wz"))[0] == 0
    gray_side = _save(tmp_path / "g.png", Image.fromarray(rgb).convert("L"))
    code, _, err = run_cli(
        "decode", str(tmp_path / "x.wz"), "--side", gray_side, "-o", str(tmp_path / "a.png")
    )
    assert code == 0, err
    small = _save(tmp_path / "small.png", Image.fromarray(rgb[:50]))
    code, _, err = run_cli(
        "decode", str(tmp_path / "x.wz"), "--side", small, "-o", str(tmp_path / "b.png")
    )
    _refused(code, err, "side image is 128x50")
    code, _, err = run_cli(
        "decode",
        str(tmp_path / "x.wz"),
        "--side",
        str(tmp_path / "none.png"),
        "-o",
        str(tmp_path / "c.png"),
    )
    _refused(code, err, "no such file")
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "c.png").exists()
