"""Side-information models: shapes, gradients, the CAMs, and bitstreams through the codec shell."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load as st_load

from wzcodec.bitstream import parse
from wzcodec.codec import Codec
from wzcodec.models import MODELS, build
from wzcodec.models.loss import RateDistortionLoss

SIDE_MODELS = ["ndic", "atn", "dsin", "dsin-atn"]


def _fresh(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build(name)


def test_all_five_models_are_registered():
    assert {"hyperprior", "ndic", "atn", "atn-paper", "dsin"} <= set(MODELS)


@pytest.mark.parametrize("name", SIDE_MODELS)
@pytest.mark.parametrize("size", [(128, 192), (192, 128)])
def test_forward_backward_at_several_sizes(name, size):
    m = _fresh(name).train()
    x, y = torch.rand(2, 3, *size), torch.rand(2, 3, *size)
    out = m(x, y, torch.tensor([1.0, 6.0]))
    assert out["x_hat"].shape == x.shape
    loss = RateDistortionLoss(alpha=1.0, beta=1.0)(out, x, y, torch.tensor([0.01, 0.01]))["loss"]
    assert torch.isfinite(loss)
    loss.backward()


@pytest.mark.parametrize("name", ["ndic", "atn"])
def test_any_resolution_models_run_at_kitti_size(name):
    m = _fresh(name).train()
    x = torch.rand(1, 3, 384, 1280)  # 375x1242 padded to multiples of 64
    out = m(x, x.flip(-1), 3.0)
    out["x_hat"].mean().backward()
    assert out["x_hat"].shape == x.shape


def test_atn_paper_runs_at_128x256_and_refuses_other_sizes():
    m = _fresh("atn-paper").train()
    x = torch.rand(1, 3, 128, 256)
    out = m(x, x, 2.0)
    out["x_hat"].mean().backward()
    assert out["x_hat"].shape == x.shape
    with pytest.raises(ValueError, match="256x128"):
        m(torch.rand(1, 3, 128, 192), None, 2.0)


@pytest.mark.parametrize("name", ["atn", "atn-paper"])
def test_gradients_reach_every_cam(name):
    m = _fresh(name).train()
    m.side_dropout = 0.0
    size = (128, 256)
    x, y = torch.rand(1, 3, *size), torch.rand(1, 3, *size)
    m(x, y, 2.0)["x_hat"].pow(2).mean().backward()
    for i, cam in enumerate(m.cams):
        for n, p in cam.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"cam {i} {n}"


@pytest.mark.parametrize("name", ["hyperprior", *SIDE_MODELS, "atn-paper"])
def test_bitstream_round_trip_and_side_cases(name, motorcycle):
    codec = Codec.from_model(_fresh(name), quality=2)
    x, y = motorcycle
    if name == "atn-paper":
        x, y = np.ascontiguousarray(x[:128, :256]), np.ascontiguousarray(y[:128, :256])
    else:
        x, y = np.ascontiguousarray(x[:150, :200]), np.ascontiguousarray(y[:150, :200])
    data = codec.encode(x)
    assert codec.encode(x) == data  # deterministic, and the encoder has no side input at all
    assert "side" not in inspect.signature(codec.encode).parameters
    with_y = codec.decode(data, side=y)
    rec, _ = codec.reconstruct(x, side=y)
    assert np.abs(with_y.astype(int) - rec.astype(int)).max() <= 1
    unrelated = np.ascontiguousarray(np.rot90(np.rot90(y)))
    for side in (unrelated, None):
        out = codec.decode(data, side=side)
        assert out.shape == x.shape and out.dtype == np.uint8


@pytest.mark.parametrize("name", ["hyperprior", *SIDE_MODELS, "atn-paper"])
def test_exported_weights_load_by_name_and_code_like_the_model(tmp_path, name, motorcycle):
    import wzcodec
    from wzcodec.weights import save_weights

    model = _fresh(name)
    path = save_weights(model, tmp_path, name)  # rounds the model's parameters to fp16 too
    loaded = wzcodec.load(name, weights=path, quality=2)
    size = (128, 256) if name == "atn-paper" else (64, 128)
    x = np.ascontiguousarray(motorcycle[0][: size[0], : size[1]])
    data = loaded.encode(x)
    from wzcodec.bitstream import parse

    same_model = Codec.from_model(model, quality=2).encode(x)
    assert parse(data).strings == parse(same_model).strings  # only the weights id may differ
    assert loaded.decode(data, side=x).shape == x.shape
    assert wzcodec.read_header(data).weights_id == loaded.weights_id


def test_dsin_weights_reference_their_hyperprior_and_refuse_another(tmp_path, motorcycle):
    import wzcodec
    from wzcodec.errors import WzError
    from wzcodec.weights import save_weights

    base = save_weights(_fresh("hyperprior"), tmp_path, "hyperprior")
    dsin = _fresh("dsin")
    dsin.load_hyperprior(wzcodec.load("hyperprior", weights=base).model.state_dict())
    path = save_weights(dsin, tmp_path, "dsin", base=base)
    assert not any(k.startswith("base.") for k in st_load(path.read_bytes()))
    x = np.ascontiguousarray(motorcycle[0][:64, :128])
    loaded = wzcodec.load("dsin", weights=path, quality=2)
    assert parse(loaded.encode(x)).strings == parse(Codec.from_model(dsin, 2).encode(x)).strings
    torch.manual_seed(1)
    save_weights(build("hyperprior"), tmp_path, "hyperprior")  # the base changes under it
    with pytest.raises(WzError, match=r"trained over another hyperprior\.safetensors"):
        wzcodec.load("dsin", weights=path)


def test_dsin_over_atn_codes_atns_bitstream_and_refines_atns_decoding_with_y(tmp_path, motorcycle):
    import importlib.util
    from pathlib import Path

    import wzcodec
    from wzcodec.weights import save_weights

    path = Path(__file__).resolve().parents[1] / "scripts/dsin_over_atn.py"
    spec = importlib.util.spec_from_file_location("dsin_over_atn", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    atn_path = save_weights(_fresh("atn"), tmp_path / "a", "atn")
    hp = save_weights(_fresh("hyperprior"), tmp_path / "d", "hyperprior")
    dsin = _fresh("dsin")
    dsin.load_hyperprior(wzcodec.load("hyperprior", weights=hp).model.state_dict())
    with torch.no_grad():
        dsin.fusion.head.bias.fill_(0.05)  # a trained fusion net changes x̂
    model = mod.dsin_over_atn(save_weights(dsin, tmp_path / "d", "dsin", base=hp), atn_path)
    assert torch.equal(model.fusion.head.bias, torch.full((3,), 0.05).half().float())
    out = save_weights(model, tmp_path / "a", "dsin-atn", base=atn_path)
    stack, atn = (
        wzcodec.load(n, weights=w, quality=2) for n, w in [("dsin-atn", out), ("atn", atn_path)]
    )
    x, y = (np.ascontiguousarray(a[:64, :128]) for a in motorcycle)
    data = stack.encode(x)
    assert parse(data).strings == parse(atn.encode(x)).strings  # atn's bitstream
    np.testing.assert_array_equal(stack.decode(data), atn.decode(atn.encode(x)))  # no y: atn's
    assert not np.array_equal(stack.decode(data, side=y), atn.decode(atn.encode(x), side=y))


def test_ndic_over_atn_stores_only_its_decoder_and_codes_atns_bitstream(tmp_path, motorcycle):
    """A model whose frozen parts are its base's under the same names (ndic grafted onto atn)
    leaves them out of its file, loads them from the base, and refuses a changed base."""
    import wzcodec
    from tests.helpers import graft_script
    from wzcodec.errors import WzError
    from wzcodec.weights import load_weights, save_weights

    atn_path = save_weights(_fresh("atn"), tmp_path, "atn")
    ndic = graft_script().graft(atn_path, "ndic")
    with torch.no_grad():
        ndic.d_x[3].bias.fill_(0.05)  # trained: its own decoder
    path = save_weights(ndic, tmp_path, "ndic", base=atn_path)
    own = st_load(path.read_bytes())
    assert own and all(k.startswith("d_x.") for k in own)
    assert json.loads(path.with_suffix(".json").read_text())["base"]["take"] == [
        "d_y.",
        "e_w.",
        "e_x.",
        "e_y.",
        "eb_w.",
        "eb_y.",
        "latent.",
    ]
    assert load_weights(path).keys() == ndic.state_dict().keys()
    x, y = (np.ascontiguousarray(a[:64, :128]) for a in motorcycle)
    loaded, atn = (
        wzcodec.load(n, weights=w, quality=2) for n, w in [("ndic", path), ("atn", atn_path)]
    )
    data = loaded.encode(x)
    assert parse(data).strings == parse(atn.encode(x)).strings
    assert not np.array_equal(loaded.decode(data, side=y), atn.decode(atn.encode(x), side=y))
    torch.manual_seed(1)
    save_weights(build("atn"), tmp_path, "atn")  # the base changes under it
    with pytest.raises(WzError, match=r"trained over another atn\.safetensors"):
        wzcodec.load("ndic", weights=path)


def test_dsin_export_takes_the_base_tables_from_the_base_file_and_refuses_other_weights(
    tmp_path, motorcycle, monkeypatch
):
    """Exported on a CPU whose exp() rounds the scale table a few ulps apart, dsin's weights
    still reference the shipped base, and code the base's bytes; different base weights fail."""
    import wzcodec
    from wzcodec.errors import WzError
    from wzcodec.models.latent import SCALE_TABLE
    from wzcodec.weights import save_weights

    base = save_weights(_fresh("hyperprior"), tmp_path, "hyperprior")
    hp = wzcodec.load("hyperprior", weights=base, quality=2)
    dsin = _fresh("dsin")
    dsin.load_hyperprior(hp.model.state_dict())
    monkeypatch.setattr("wzcodec.models.base.SCALE_TABLE", SCALE_TABLE * (1 + 2e-7))
    path = save_weights(dsin, tmp_path, "dsin", base=base)
    x = np.ascontiguousarray(motorcycle[0][:64, :128])
    loaded = wzcodec.load("dsin", weights=path, quality=2)
    assert parse(loaded.encode(x)).strings == parse(hp.encode(x)).strings
    with torch.no_grad():
        dsin.base.g_a[0].weight[0, 0, 0, 0] += 1.0
    with pytest.raises(WzError, match=r"base\. weights differ"):
        save_weights(dsin, tmp_path, "dsin", base=base)


def test_visualize_writes_common_local_and_attention_pictures(tmp_path, motorcycle):
    from PIL import Image

    from wzcodec.eval.pictures import attention_maps, common_local

    codec = Codec.from_model(_fresh("atn"), quality=2)
    x, y = (np.ascontiguousarray(a[:128, :192]) for a in motorcycle)
    p = common_local(codec, x, y, tmp_path)
    assert Image.open(p).size == (192 * 5, 128)
    p = attention_maps(codec, x, y, (100, 60), tmp_path)
    assert Image.open(p).size == (192 * 4, 128)


def test_warm_start_from_hyperprior_copies_transforms_and_marks_new_parts():
    hp = _fresh("hyperprior")
    atn = _fresh("atn")
    warm = atn.load_hyperprior(hp.state_dict())
    assert torch.equal(atn.e_x[0].weight, hp.g_a[0].weight)
    assert torch.equal(atn.e_w[0].weight, hp.g_a[0].weight)
    n = hp.g_s[0].weight.shape[0]
    assert torch.equal(atn.d_x[0][0].weight[:n], hp.g_s[0].weight)  # widened: v̂_x part copied
    assert torch.equal(atn.d_y[3].weight[:128], hp.g_s[6].weight)
    assert "d_x.0.0.weight" in warm and "latent.log_gain_y" in warm
    assert not any(name.startswith(("cams.", "eb_y.", "eb_w.")) for name in warm)


def test_attention_alignment_counts_same_row_and_plausible_disparities():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiments/atn-side-path/attention_alignment.py"
    spec = importlib.util.spec_from_file_location("attention_alignment", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    R, W, nb = 2, 10, 3
    att = torch.full((R, W, nb, W), 0.01)
    for c in range(W):  # row 0: every query's best key is 2 columns left in its own row
        att[0, c, 1, max(c - 2, 0)] = 1.0
        att[1, c, 0, c] = 1.0  # row 1: best key in the row above, same column
    s = mod.alignment(att, max_disparity=3)
    assert s["same_row"] == 0.5 and s["plausible"] == 0.5
    att[0, :, 1, :] = 0.01
    att[0, :, 1, W - 1] = 1.0  # best key far to the right: same row, impossible disparity
    s = mod.alignment(att, max_disparity=3)
    assert s["same_row"] == 0.5 and s["plausible"] == pytest.approx(1 / 20)  # only (0, 9)


def test_side_probe_finds_no_side_gain_in_a_model_that_ignores_y(tiny_stereo, capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "experiments/atn-side-path/side_probe.py"
    spec = importlib.util.spec_from_file_location("side_probe", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rows = {}
    for name in ("hyperprior", "atn"):
        mod.main(["--model", name, "--data", f"stereo:{tiny_stereo}", "--every", "1"])
        out = capsys.readouterr().out.strip().splitlines()
        assert out[0].startswith("2 crops")
        rows[name] = [float(v) for v in out[-1].split(" | ")[1:]]  # q4: true, other, none, y = x
    assert len(set(rows["hyperprior"])) == 1  # y changes nothing
    assert rows["atn"][3] > rows["atn"][2]  # the shipped atn reads y = x
    paper = mod.crops(f"stereo:{tiny_stereo}", 1, 2, 384, 768, paper=True)
    assert [tuple(t.shape) for pair in paper for t in pair] == [(1, 3, 128, 256)] * 4
    atn = _fresh("atn")
    mod.readout(atn)  # x̂ from CAM 3's output through D_y's last stage, nothing of D_x's own
    n = atn.d_y[3].weight.shape[0]
    assert not atn.d_x[3].weight[:n].any()
    assert torch.equal(atn.d_x[3].weight[n:], atn.d_y[3].weight)
    # --warp: the oracle finds a known disparity, and shifting by it undoes the disparity
    x = torch.rand(1, 3, 32, 96, generator=torch.Generator().manual_seed(0))
    y = torch.roll(x, 16, -1)  # y[c] = x[c - 16]: each token of x lies 2 tokens right in y
    dr, dc = mod.best_shift(x, y, k=24)
    assert not dr.any() and (dc[..., 2:-3] == 2).all()
    assert torch.allclose(mod.shift(y, dr, dc, 8)[..., 16:-24], x[..., 16:-24], atol=1e-4)
    mod.main(["--model", "atn", "--data", f"stereo:{tiny_stereo}", "--every", "1", "--warp"])
    out = capsys.readouterr().out.strip().splitlines()
    names = [c.rsplit(" ", 1)[0] for c in out[-1].split(" | ")[1:]]
    cams = [f"shift by CAM {i}" for i in (1, 2, 3)]
    assert names == ["no alignment", *cams, "oracle shift", "oracle shift, y's pixels"]


def test_fusion_probe_scores_atn_and_each_side_image_with_dsins_fusion(tiny_stereo, capsys):
    import importlib.util
    import sys
    from pathlib import Path

    scripts = Path(__file__).resolve().parents[1] / "experiments/atn-side-path"
    sys.path.insert(0, str(scripts))  # it imports side_probe's helpers
    try:
        spec = importlib.util.spec_from_file_location("fusion_probe", scripts / "fusion_probe.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mod.main(["--data", f"stereo:{tiny_stereo}", "--every", "1", "--qualities", "2"])
    finally:
        sys.path.remove(str(scripts))
    row = capsys.readouterr().out.strip().splitlines()[-1].split(" | ")[1:]
    vals = {c.rsplit(" ", 1)[0]: float(c.rsplit(" ", 1)[1]) for c in row}
    srcs = ("readout", "shift", "dsin match")
    assert list(vals) == ["atn x̂"] + [f"{k} {w}" for k in srcs for w in ("y_syn", "x̂+F")]
    assert all(np.isfinite(v) and v > 10 for v in vals.values())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_records_its_arguments_and_rebuilds_from_them(name):
    import inspect
    import json

    model = build(name)
    config = json.loads(json.dumps(model.config))  # what a weights file's .json holds
    own = inspect.signature(MODELS[name]).parameters.values()
    named = {p.name for p in own if p.kind is not p.VAR_KEYWORD and p.name != "base"}
    assert named <= set(config)  # every argument its constructor declares, with its value
    again = build(name, **config)
    assert again.config == config
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    assert {k: v.shape for k, v in again.state_dict().items()} == shapes


def test_a_subclass_adds_its_arguments_to_its_parents():
    atn = build("atn", window=4, w_noise=0.5)
    assert atn.config["window"] == 4 and atn.config["w_noise"] == 0.5  # atn's own, ndic's
    assert build("dsin-atn").config["window"] == 16  # dsin's **base_config, flattened in
