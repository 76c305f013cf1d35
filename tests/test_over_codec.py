"""Models over a standard codec (``avif-si``, ``heic-si``): the base file byte for byte in a
small header, plain camera files accepted, the refiner's gain from y and its safety without."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import wzcodec
from wzcodec import classical
from wzcodec.bitstream import parse
from wzcodec.errors import WzError
from wzcodec.metrics import psnr

from .conftest import run_cli

BASES = ["avif-si", "heic-si"]


@pytest.fixture(scope="module", params=BASES)
def si(request):
    return wzcodec.load(request.param)


@pytest.fixture(scope="module")
def small(motorcycle):
    x, y = motorcycle
    return np.ascontiguousarray(x[:200, :320]), np.ascontiguousarray(y[:200, :320])


def test_file_is_the_base_bitstream_byte_for_byte_plus_a_small_header(si, small):
    x, _ = small
    data = si.encode(x, quality=30)
    base = classical.encode(si.model.base_codec, x, 30)
    assert base in data  # one contiguous copy, framed by the header and a checksum
    assert len(data) - len(base) <= 40
    bs = parse(data)
    assert bs.strings == [base] and bs.header.quality == 30


def test_without_y_decode_is_the_base_decoders_own_pixels(si, small):
    x, _ = small
    data = si.encode(x, quality=20)
    base = classical.decode(parse(data).strings[0])
    assert np.array_equal(si.decode(data), base)


def test_a_plain_camera_file_decodes_and_is_refined_with_y(si, small):
    x, y = small
    plain = classical.encode(si.model.base_codec, x, 25)  # no header: any encoder's file
    assert np.array_equal(si.decode(plain), classical.decode(plain))
    refined = si.decode(plain, side=y)
    assert refined.shape == x.shape
    assert psnr(x, refined) > psnr(x, classical.decode(plain))


def test_a_camera_file_at_the_slowest_settings_is_refined_too(si, small):
    x, y = small
    slow = {"avif-si": "avif-s2", "heic-si": "heic-slow"}[si.name]
    plain = classical.encode(slow, x, 25)  # libaom speed 2 / x265 placebo: still plain files
    assert classical.sniff(plain) == si.model.base_codec
    assert psnr(x, si.decode(plain, side=y)) > psnr(x, classical.decode(plain))


def test_a_file_made_with_another_receiver_decodes_with_this_one(si, small):
    x, y = small
    bs = parse(si.encode(x, quality=20))
    bs.header.weights_id = bytes(8)  # as if an older (or newer) receiver had shipped
    other = bs.to_bytes()
    assert np.array_equal(si.decode(other, side=y), si.decode(si.encode(x, quality=20), side=y))


def test_a_plain_file_of_another_base_is_refused(small):
    x, _ = small
    with pytest.raises(WzError, match=r"bad magic|not a wzcodec"):
        wzcodec.load("avif-si").decode(classical.encode("heic", x, 30))


def test_gray_is_coded_as_gray_by_the_base_and_decodes_gray(oakd):
    x, y = oakd
    codec = wzcodec.load("avif-si")
    data = codec.encode(x, quality=30)
    assert parse(data).header.gray
    assert parse(data).strings[0] == classical.encode("avif", x[..., :1].repeat(3, 2), 30)
    out = codec.decode(data, side=y)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_bpp_target_picks_the_highest_quality_within_budget(small):
    x, _ = small
    codec = wzcodec.load("avif-si")
    budget = 0.3
    data = codec.encode(x, bpp=budget)
    q = parse(data).header.quality
    pixels = x.shape[0] * x.shape[1]
    assert len(data) * 8 / pixels <= budget
    assert len(codec.encode(x, quality=q + 1)) * 8 / pixels > budget


def test_post_filter_ablation_ignores_y(small):
    x, y = small
    pf = wzcodec.load("avif-pf")
    data = pf.encode(x, quality=20)
    assert np.array_equal(pf.decode(data), pf.decode(data, side=y))
    assert np.array_equal(pf.decode(data, side=np.zeros_like(y)), pf.decode(data))


@pytest.mark.parametrize("model", BASES)
def test_shipped_refiner_gains_with_true_y_and_not_with_unrelated_y(model, motorcycle):
    x, y = motorcycle
    codec = wzcodec.load(model)
    from skimage import data as skdata

    other = np.pad(skdata.coffee(), ((0, 100), (0, 141), (0, 0)), mode="reflect")  # unrelated
    assert other.shape == x.shape
    gains, losses = [], []
    for q in (20, 40):
        data = codec.encode(x, quality=q)
        base = psnr(x, codec.decode(data))
        gains.append(psnr(x, codec.decode(data, side=y)) - base)
        losses.append(psnr(x, codec.decode(data, side=other)) - base)
    # measured (shipped weights): avif-si +0.33, +0.27 dB; heic-si +0.34, +0.12 dB
    assert gains[0] > 0.2 and gains[1] > 0.0, gains
    assert min(losses) > -0.05, losses


@pytest.mark.parametrize("model", ["avif-si", "heic-si", "avif-pf", "heic-pf"])
def test_shipped_rate_gate_is_fitted(model):
    m = wzcodec.load(model).model
    alpha = [m.gate(2.0**k) for k in range(-5, 5)]  # 1/32 .. 16 bpp
    assert all(0.0 <= a <= 1.0 for a in alpha)
    assert alpha != [1.0] * len(alpha)  # calibrated, not the untrained all-ones
    assert m.gate(None) == 1.0  # training and validation see R ungated


def test_half_resolution_matching_recovers_an_even_shift(motorcycle):
    from wzcodec.models.dsin import match_patches

    x, _ = motorcycle
    t = torch.from_numpy(np.ascontiguousarray(x[100:260, 100:420])).permute(2, 0, 1)[None] / 255
    shifted = torch.roll(t, shifts=10, dims=-1)  # y: x moved 10 px right
    y_syn = match_patches(t, shifted, shifted, (20, 24), search_v=8, sigma=150.0, scale=2)
    inner = (..., slice(20, -20), slice(40, -40))
    assert (y_syn - t)[inner].abs().mean() < 0.01


@pytest.mark.parametrize("codec", ["avif", "heic", "jpeg", "webp", "jxl"])
def test_sniff_names_the_codec_of_a_real_file(codec, small):
    assert classical.sniff(classical.encode(codec, small[0], 50)) == codec
    assert classical.sniff(b"\x89PNG\r\n\x1a\n" + bytes(40)) is None


def test_cli_decodes_a_plain_avif_with_side_and_refuses_it_without_model(tmp_path, small):
    from wzcodec.images import read_rgb, save_image

    x, y = small
    (tmp_path / "cam0.avif").write_bytes(classical.encode("avif", x, 30))
    save_image(tmp_path / "cam1.png", y)
    cam0, cam1, out = tmp_path / "cam0.avif", tmp_path / "cam1.png", tmp_path / "out.png"
    code, _, err = run_cli("decode", str(cam0), "--side", str(cam1), "-o", str(out))
    assert code == 2 and "--model" in err and not out.exists()
    code, _, err = run_cli("decode", str(cam0), "--model", "heic-si", "-o", str(out))
    assert code == 2 and len(err.strip().splitlines()) == 1 and not out.exists()
    code, _, err = run_cli(
        "decode", str(cam0), "--side", str(cam1), "--model", "avif-si", "-o", str(out)
    )
    assert code == 0, err
    assert np.array_equal(read_rgb(out), wzcodec.load("avif-si").decode(cam0.read_bytes(), side=y))


def test_cli_encode_to_a_bpp_target(tmp_path, small):
    from wzcodec.images import save_image

    x, _ = small
    save_image(tmp_path / "x.png", x)
    out = tmp_path / "x.wz"
    code, _, err = run_cli(
        "encode", str(tmp_path / "x.png"), "-o", str(out), "--model", "heic-si", "--bpp", "0.25"
    )
    assert code == 0, err
    assert out.stat().st_size * 8 / (x.shape[0] * x.shape[1]) <= 0.25


def _refiner_config(path, data, cache) -> str:
    import yaml

    cfg = {
        "model": "avif-si",
        "bases": ["avif"],
        "qualities": {"avif": [20, 40]},
        "data": {"train": [f"stereo:{data}"], "val": f"stereo:{data}", "val_count": 1},
        "cache": str(cache),
        "workers": 1,
        "crop": [64, 128],
        "batch": 2,
        "lr": 1e-3,
        "init": "dsin",
        "calibrate": 1,
        "serve": {"scale": 1},
        "lr_warmup": 2,
        "steps": 6,
        "seed": 0,
        "val_every": 3,
        "log_every": 1,
        "checkpoint_minutes": 60,
    }
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def test_refiner_training_resumes_exactly_logs_side_gaps_and_exports(tmp_path, tiny_stereo, small):
    import csv
    import json

    from wzcodec.training import train
    from wzcodec.weights import export

    cfg = _refiner_config(tmp_path / "r.yaml", tiny_stereo, tmp_path / "cache")
    torch.set_num_threads(1)
    try:
        train(cfg, tmp_path / "straight", progress=False)
        train(cfg, tmp_path / "split", max_steps=3, progress=False)
        train(cfg, tmp_path / "split", resume=True, progress=False)
    finally:
        torch.set_num_threads(2)
    a = torch.load(tmp_path / "straight/checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "split/checkpoint.pt", weights_only=False)
    assert a["step"] == b["step"] == 6
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    with open(tmp_path / "split/log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [0, 1, 2, 3, 4, 5, 6]  # 0: the start's val
    val = [r["val"] for r in rows if r["val"] not in ("", "{}")]
    assert len(val) == 3 and all("val_gap_unrelated_avif_q20" in v for v in val)
    assert all("val_gap_none_avif_q40" in v for v in val)
    gate = json.loads((tmp_path / "split/gate.json").read_text())["avif"]["alpha"]
    assert all(0 <= a <= 1 for a in gate)
    assert torch.allclose(b["model"]["gate_avif"], torch.tensor(gate).float(), atol=1e-4)
    weights = export(tmp_path / "split/checkpoint.pt", tmp_path / "w")
    codec = wzcodec.load("avif-si", weights=weights)
    assert codec.model.receiver.scale == 1  # served as the config's ``serve`` says
    data = codec.encode(small[0], quality=30)
    assert np.array_equal(codec.decode(data), classical.decode(parse(data).strings[0]))
    assert len(list((tmp_path / "cache/avif").rglob("*.png"))) == 4 * 2  # both views x 2 q


def test_cam_alignment_mixes_y_pixels_only():
    from wzcodec.receiver.match import CamAlign

    torch.manual_seed(0)
    cam = CamAlign()
    x = torch.rand(1, 3, 37, 50)
    y = torch.ones(1, 3, 37, 50) * torch.tensor([0.2, 0.5, 0.9]).view(1, 3, 1, 1)
    out = cam(x, y)  # any size: padded to the tokens and cropped back
    assert out.shape == x.shape
    assert torch.allclose(out, y, atol=1e-5)  # a convex mix of one colour is that colour


def test_both_alignment_starts_as_the_matching_refiner(small):
    from wzcodec.images import to_tensor
    from wzcodec.models import build
    from wzcodec.training.refiner import start_from_dsin

    x, y = small
    xt, yt = to_tensor(x)[None], to_tensor(y)[None]
    x_hat = to_tensor(classical.decode(classical.encode("avif", x, 20)))[None]
    match, both = build("avif-si"), build("avif-si", align="both")
    for m in (match, both):
        start_from_dsin(m)
    with torch.no_grad():
        a, b = match.refine(x_hat, yt), both.refine(x_hat, yt)
    assert torch.allclose(a, b, atol=1e-5)
    assert ((a - xt) ** 2).mean() < ((x_hat - xt) ** 2).mean()  # dsin's start already gains


def test_alignment_ablation_trains_its_attention():
    from wzcodec.models import build

    torch.manual_seed(0)
    m = build("avif-si", align="cam")
    torch.nn.init.normal_(m.receiver.refiner.head.weight, std=0.01)  # as after a first step
    x_hat, y = torch.rand(2, 3, 32, 64), torch.rand(2, 3, 32, 64)
    m(x_hat, y).pow(2).mean().backward()
    assert m.receiver.cam.embed[0].weight.grad.abs().sum() > 0
    assert m.receiver.cam.cam.to_q.weight.grad.abs().sum() > 0


def test_a_single_photo_trains_as_a_shifted_relit_pseudo_pair(tmp_path, small):
    import random

    from PIL import Image

    from wzcodec.data.protocols import PSEUDO_SHIFT
    from wzcodec.training.base_decodes import cache_path
    from wzcodec.training.refiner import RefinerData

    x, _ = small
    src = tmp_path / "photo.png"
    Image.fromarray(x).save(src)
    cache = tmp_path / "cache"
    dst = cache_path(cache, "avif", 20, src)
    dst.parent.mkdir(parents=True)
    Image.fromarray(classical.decode(classical.encode("avif", x, 20))).save(dst)
    data = RefinerData([(src, None)], {"avif": [20]}, cache, (64, 128))
    rng = random.Random(1)
    for _ in range(4):
        xc, x_hat, y = data.sample(rng, 0.0)
        assert xc.shape == x_hat.shape == y.shape == (3, 64, 128)
        # y is the photo itself, moved by at most PSEUDO_SHIFT columns and re-lit: some shift
        # of the crop correlates almost perfectly with it (either way: a mirrored sample)
        best = 0.0
        for dr in (0,):
            for dc in range(-PSEUDO_SHIFT, PSEUDO_SHIFT + 1):
                a = xc[:, 8 + dr : 56 + dr, 56 + dc : 72 + dc].flatten()
                b = y[:, 8:56, 56:72].flatten()
                if a.numel() == b.numel():
                    best = max(best, float(torch.corrcoef(torch.stack([a, b]))[0, 1]))
        assert best > 0.98
