"""Files coded by earlier releases keep decoding: a better receiver never orphans a file.

``tests/data/files-<commit>/`` holds .wz files of the bundled OAK-D pairs coded by the release
at that commit, and ``coded.json`` what they measured then. A receiver's file (avif-si,
heic-si) is its base codec's bytes: any later receiver must refine it; on average over these
files it must gain, and on no file lose more than 0.1 dB against the base decode (the hand-held
corridor pair, whose views overlap little, loses 0.07-0.09 dB with the flow receiver: the
gate is fitted on the mean over pairs, per rate). An end-to-end model's file decodes with the
weights it names.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import wzcodec
from wzcodec.images import read_rgb
from wzcodec.metrics import psnr

DATA = Path(__file__).parent / "data"
SAMPLES = Path(wzcodec.__file__).parent / "samples" / "oakd"
FILES = sorted(DATA.glob("files-*/*.wz"))


def _coded(path: Path) -> dict:
    meta = json.loads((path.parent / "coded.json").read_text())
    return next(f for f in meta["files"] if f["file"] == path.name)


def test_fixtures_are_there():
    assert len(FILES) >= 8


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_file_of_an_earlier_release_decodes_at_no_worse_psnr(path: Path):
    data = path.read_bytes()
    header = wzcodec.read_header(data)
    codec = wzcodec.load(header.model)
    name = path.name.split("-")[0]
    x = read_rgb(SAMPLES / "left" / f"{name}.png")
    y = read_rgb(SAMPLES / "right" / f"{name}.png")
    then = _coded(path)
    assert then["bytes"] == len(data)
    if codec.base_decode(data) is None:  # an end-to-end model's file
        decoded = codec.decode(data, side=y if codec.uses_side else None)
        assert psnr(x, decoded) == pytest.approx(then["psnr_decoded"], abs=0.05)
        return
    base = codec.decode(data)  # no y: the base decoder's own pixels
    assert psnr(x, base) == pytest.approx(then["psnr_base"], abs=1e-6)
    assert psnr(x, codec.decode(data, side=y)) >= psnr(x, base) - 0.1


def test_a_newer_receiver_gains_on_average_over_the_files_of_an_earlier_release():
    gains = []
    for path in (p for p in FILES if "-si-" in p.name):
        data = path.read_bytes()
        codec = wzcodec.load(wzcodec.read_header(data).model)
        name = path.name.split("-")[0]
        x = read_rgb(SAMPLES / "left" / f"{name}.png")
        y = read_rgb(SAMPLES / "right" / f"{name}.png")
        gains.append(psnr(x, codec.decode(data, side=y)) - psnr(x, codec.decode(data)))
    assert len(gains) >= 6 and sum(gains) / len(gains) > 0.5, gains  # measured: +1.03 dB
