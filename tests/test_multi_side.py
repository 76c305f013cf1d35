"""Several side images at once (camera rigs, past frames), sequences decoded with their own
earlier frames, and the data specs for rigs and a user's own folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import wzcodec
from wzcodec.data import from_spec
from wzcodec.eval.sequence import measure, summarize
from wzcodec.metrics import psnr
from wzcodec.sequence import decode_sequence

from .conftest import run_cli


@pytest.fixture(scope="module")
def crops(motorcycle):
    """x, its true side image (the other camera) and an unrelated image, 192x256."""
    x, y = motorcycle
    c = np.ascontiguousarray
    return c(x[100:292, 200:456]), c(y[100:292, 200:456]), c(np.rot90(x, 2)[:192, :256])


@pytest.fixture(scope="module")
def si():
    return wzcodec.load("avif-si")


def test_a_list_of_one_side_image_decodes_as_that_image(si, crops):
    x, y, _ = crops
    data = si.encode(x, quality=20)
    assert np.array_equal(si.decode(data, side=[y]), si.decode(data, side=y))
    assert np.array_equal(si.decode(data, side=[]), si.decode(data))


def test_two_side_images_pick_each_patch_from_the_one_that_matches(si, crops):
    x, y, unrelated = crops
    data = si.encode(x, quality=20)
    one = psnr(x, si.decode(data, side=y))
    # the true view wins the patches whichever order it comes in; x itself beats both
    assert abs(psnr(x, si.decode(data, side=[unrelated, y])) - one) < 0.05
    assert psnr(x, si.decode(data, side=[y, x])) > one + 0.2
    prepared = si.prepare_side([y, x])
    assert np.array_equal(si.decode(data, side=prepared), si.decode(data, side=[y, x]))


def test_side_images_of_different_sizes_are_refused(si, crops):
    _, y, _ = crops
    with pytest.raises(wzcodec.ImageError, match="differ in size"):
        si.prepare_side([y, y[:100]])


def test_a_single_side_model_uses_the_first_of_several():
    codec = wzcodec.load("dsin", quality=2)
    from skimage import data as skdata

    left, right, _ = skdata.stereo_motorcycle()
    x, y = left[:128, :192], right[:128, :192]
    data = codec.encode(x)
    assert codec.max_sides == 1
    assert np.array_equal(codec.decode(data, side=[y, x]), codec.decode(data, side=y))


def test_cli_decodes_with_two_side_images_and_notes_a_single_side_model(tmp_path, crops):
    x, y, unrelated = crops
    for name, img in (("x", x), ("y", y), ("u", unrelated)):
        Image.fromarray(img).save(tmp_path / f"{name}.png")
    code, _, err = run_cli(
        "encode", str(tmp_path / "x.png"), "-o", str(tmp_path / "x.wz"), "--model", "avif-si"
    )
    assert code == 0, err
    sides = f"{tmp_path / 'y.png'},{tmp_path / 'u.png'}"
    code, out, err = run_cli(
        "decode", str(tmp_path / "x.wz"), "--side", sides, "-o", str(tmp_path / "o.png")
    )
    assert code == 0 and out == "", err  # the data may go to stdout (-o -): status lines do not
    assert "side images" in err and "u.png" in err  # status lines: stderr
    got = np.asarray(Image.open(tmp_path / "o.png").convert("RGB"))
    si = wzcodec.load("avif-si")
    assert np.array_equal(got, si.decode((tmp_path / "x.wz").read_bytes(), side=[y, unrelated]))
    code, _, err = run_cli(
        "encode", str(tmp_path / "x.png"), "-o", str(tmp_path / "h.wz"), "--model", "hyperprior"
    )
    code, _, err = run_cli(
        "decode", str(tmp_path / "h.wz"), "--side", sides, "-o", str(tmp_path / "h.png")
    )
    assert code == 0 and "uses one side image" in err
    code, _, err = run_cli(
        "decode", str(tmp_path / "x.wz"), "--side", f"{tmp_path / 'y.png'},nope.png", "-o",
        str(tmp_path / "n.png"),
    )  # fmt: skip
    assert code == 2 and "nope.png" in err and not (tmp_path / "n.png").exists()


def _stereo_rig(root, frames: list[np.ndarray], others: list[np.ndarray]):
    rows = ["source,id,split,scene_group,width,height,channels,left,right"]
    for view in ("left", "right"):
        (root / "cam" / view).mkdir(parents=True)
    for t, (a, b) in enumerate(zip(frames, others, strict=True)):
        Image.fromarray(a).save(root / f"cam/left/seq_{t:06d}.png")
        Image.fromarray(b).save(root / f"cam/right/seq_{t:06d}.png")
        rows.append(
            f"cam,seq_{t:06d},test,s,0,0,rgb,cam/left/seq_{t:06d}.png,cam/right/seq_{t:06d}.png"
        )
    (root / "splits.csv").write_text("\n".join(rows) + "\n")


def test_rig_spec_gives_left_t_with_right_t_and_the_previous_frame(tmp_path, crops):
    x, y, u = crops
    _stereo_rig(tmp_path, [u, x, x], [u, y, y])
    pairs = from_spec(f"rig:{tmp_path}", split="test")
    assert [p.name for p in pairs] == ["cam/seq_000001", "cam/seq_000002"]
    p = pairs[0]
    assert p.x.name == "seq_000001.png" and p.y.parent.name == "right"
    assert [s.name for s in p.extra] == ["seq_000000.png", "seq_000000.png"]
    assert p.sides == (p.y, *p.extra)


def test_eval_names_the_side_images_each_run_used(tmp_path, crops):
    x, y, u = crops
    _stereo_rig(tmp_path / "rig", [u, x], [u, y])
    for sides, label in (("1", "avif-si[y1]"), ("2", "avif-si[y2]"), (None, "avif-si[y1+y2+y3]")):
        out = tmp_path / f"out{sides}"
        args = ["eval", "--data", f"rig:{tmp_path / 'rig'}", "--models", "avif,avif-si"]
        args += ["--qualities", "20", "--anchor", "avif", "--no-estimate", "--out", str(out)]
        code, _, err = run_cli(*args, *(["--sides", sides] if sides else []))
        assert code == 0, err
        models = set(json.loads((out / "summary.json").read_text())["summary"]["all"])
        assert models == {"avif", label}
    code, _, err = run_cli(*args, "--sides", "4")
    assert code == 2 and "side images 1..3" in err


def test_pairs_spec_pairs_a_users_folders_by_name_and_names_a_lonely_file(tmp_path, crops):
    x, y, _ = crops
    for d in ("L", "R"):
        (tmp_path / d).mkdir()
    Image.fromarray(x).save(tmp_path / "L/a.png")
    Image.fromarray(y).save(tmp_path / "R/a.png")
    pairs = from_spec(f"pairs:{tmp_path / 'L'},{tmp_path / 'R'}")
    assert [(p.x.name, p.y.name) for p in pairs] == [("a.png", "a.png")]
    Image.fromarray(x).save(tmp_path / "L/b.png")
    code, _, err = run_cli(
        "eval", "--data", f"pairs:{tmp_path / 'L'},{tmp_path / 'R'}", "--models", "avif",
        "--out", str(tmp_path / "o"),
    )  # fmt: skip
    assert code == 2 and "no partner for b" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def frames(motorcycle):
    """Five frames of a camera panning right over the motorcycle, 128x192."""
    x, _ = motorcycle
    return [np.ascontiguousarray(x[150:278, 150 + 12 * t : 342 + 12 * t]) for t in range(5)]


def test_sequence_decode_feeds_its_own_decoded_frames_forward(si, frames):
    blobs = [si.encode(f, quality=15) for f in frames]
    got = list(decode_sequence(si, blobs, refs=2))
    assert np.array_equal(got[0], si.decode(blobs[0]))  # the first frame has no side image
    assert np.array_equal(got[3], si.decode(blobs[3], side=[got[2], got[1]]))
    assert np.mean([psnr(f, g) for f, g in zip(frames[1:], got[1:], strict=True)]) > np.mean(
        [psnr(f, si.decode(b)) for f, b in zip(frames[1:], blobs[1:], strict=True)]
    )


def test_sequence_measure_bounds_the_fed_forward_gain_by_the_true_frames(si, frames):
    rows = measure(si, frames, [10, 20, 30, 40], refs=1, progress=False)
    assert len(rows) == 4 * len(frames)
    first = [r for r in rows if r["frame"] == 0]
    assert all(r["psnr_seq"] == r["psnr_base"] == r["psnr_true"] for r in first)
    s = summarize(rows)
    assert s["bd_rate_seq_vs_base"] < 0
    assert s["bd_rate_true_vs_base"] <= s["bd_rate_seq_vs_base"] + 1.0


def test_cli_decode_seq_writes_every_frame_only_once_all_decode(tmp_path, si, frames):
    raw, coded, out = tmp_path / "raw", tmp_path / "coded", tmp_path / "out"
    for d in (raw, coded, out):
        d.mkdir()
    for t, f in enumerate(frames):
        Image.fromarray(f).save(raw / f"f{t:02d}.png")
    code, _, err = run_cli(
        "encode", str(raw), "-o", str(coded), "--model", "avif-si", "--quality", "15"
    )
    assert code == 0, err  # a folder of frames codes each alone, by name
    blobs = [(coded / f"f{t:02d}.wz").read_bytes() for t in range(len(frames))]
    assert blobs == [si.encode(f, quality=15) for f in frames]
    code, _, err = run_cli("decode-seq", str(coded), "-o", str(out))
    assert code == 0, err
    want = list(decode_sequence(si, blobs, refs=2))
    for t in range(len(frames)):
        got = np.asarray(Image.open(out / f"f{t:02d}.png").convert("RGB"))
        assert np.array_equal(got, want[t])
    (coded / "f02.wz").write_bytes(b"WZ broken")
    out2 = tmp_path / "out2"
    out2.mkdir()
    code, _, err = run_cli("decode-seq", str(coded), "-o", str(out2))
    assert code == 2 and err.count("\n") == 1 and not any(out2.iterdir())


def test_cli_eval_seq_writes_its_tables_and_plot(tmp_path, frames):
    raw = tmp_path / "raw"
    raw.mkdir()
    for t, f in enumerate(frames[:3]):
        Image.fromarray(f).save(raw / f"f{t:02d}.png")
    out = tmp_path / "seq"
    code, msg, err = run_cli("eval-seq", str(raw), "--qualities", "10,30", "--out", str(out))
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 3 and len(summary["frame_files"]) == 3
    assert "vs the base alone" in msg
    assert (out / "gain_over_frames.png").stat().st_size > 0
    assert len((out / "per_frame.csv").read_text().splitlines()) == 1 + 2 * 3
    code, _, err = run_cli("eval-seq", str(raw / "f00.png"), "--out", str(out))
    assert code == 2 and "at least 2 frames" in err
