"""What a config trains (``training/params.py``): warm starts, grafts, frozen parts, the
coarse-latent and no-side-rate options."""

from __future__ import annotations

import os

import pytest
import torch

from tests.conftest import tiny_config
from tests.helpers import graft_script, refused_before_writing, weight_name
from wzcodec.training import train
from wzcodec.weights import export

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def test_warm_start_from_the_same_model_without_window_keeps_the_new_bias_only(tmp_path):
    from wzcodec.models import build
    from wzcodec.training.params import init_model
    from wzcodec.weights import save_weights

    small = {"N": 16, "M": 24, "levels": 2, "attn_dim": 8, "heads": 2}
    torch.manual_seed(0)
    src = build("atn", **small)
    save_weights(src, tmp_path, "atn", fp16=False)
    dst = build("atn", window=3, **small)
    prior = dst.cams[0].col_bias.detach().clone()
    warm = init_model(dst, str(tmp_path / "atn.safetensors"))
    assert not any("col_bias" in n for n in warm) and "cams.0.to_q.weight" in warm
    assert torch.equal(dst.cams[0].col_bias, prior)
    assert torch.equal(dst.cams[2].to_k.weight, src.cams[2].to_k.weight)
    with pytest.raises(RuntimeError):  # anything else that does not match is still an error
        init_model(
            build("atn", **{**small, "attn_dim": 16}),
            str(tmp_path / "atn.safetensors"),
        )


@pytest.mark.parametrize("name", ["ndic", "atn"])
def test_graft_with_zero_side_scale_codes_and_decodes_as_the_hyperprior(tmp_path, name):
    import importlib.util
    from pathlib import Path

    from wzcodec.models import build
    from wzcodec.weights import save_weights

    path = Path(__file__).resolve().parents[2] / "scripts/graft.py"
    spec = importlib.util.spec_from_file_location("graft", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    small = {"N": 16, "M": 24, "levels": 2}
    extra = {"attn_dim": 8, "heads": 2, "window": 3} if name == "atn" else {}
    torch.manual_seed(0)
    hp, side = build("hyperprior", **small), build(name, **small, **extra)
    save_weights(hp, tmp_path / "hp", "hyperprior", fp16=False)
    save_weights(side, tmp_path / name, name, fp16=False)
    weights = tmp_path / name / f"{name}.safetensors"
    g = mod.graft(weights, tmp_path / "hp/hyperprior.safetensors", 0.0)
    assert g.model_name == name
    if name == "atn":
        assert torch.equal(g.cams[1].to_k.weight, side.cams[1].to_k.weight)
    assert torch.equal(g.d_y[0][0].weight, side.d_y[0][0].weight)  # side path: the model's
    assert torch.equal(g.e_w[0].weight, side.e_w[0].weight)
    assert torch.equal(g.e_x[0].weight, hp.g_a[0].weight)  # x path: the hyperprior's
    g.eval(), hp.eval()
    x, y = torch.rand(1, 3, 64, 128), torch.rand(1, 3, 64, 128)
    with torch.no_grad():
        ref = hp(x, None, 2.0)
        for s in (y, torch.rand_like(y), None):
            out = g(x, s, 2.0)
            torch.testing.assert_close(out["x_hat"], ref["x_hat"], atol=1e-5, rtol=0)
        g.update(force=True), hp.update(force=True)
        assert g.compress(x, 2.0)["strings"] == hp.compress(x, 2.0)["strings"]


@pytest.mark.parametrize("target", ["atn-paper", "ndic"])
def test_graft_from_atn_keeps_atns_ndic_part_and_starts_as_atn_without_its_cams(tmp_path, target):
    from wzcodec.models import build
    from wzcodec.weights import save_weights

    torch.manual_seed(0)
    atn = build("atn", N=16, M=24, levels=2, attn_dim=8, heads=2, window=3)
    save_weights(atn, tmp_path / "atn", "atn", fp16=False)
    size = {"height": 64, "width": 128} if target == "atn-paper" else {}
    g = graft_script().graft(tmp_path / "atn/atn.safetensors", target, **size)
    assert g.model_name == target
    assert torch.equal(g.e_x[0].weight, atn.e_x[0].weight)
    assert torch.equal(g.latent.log_gain_y, atn.latent.log_gain_y)
    with torch.no_grad():  # atn with its CAM inputs cut decodes as the graft does
        for stage in (atn.d_x[1][0], atn.d_x[2][0], atn.d_x[3]):
            g_w = dict(g.named_parameters())[weight_name(atn, stage)]
            assert g_w.shape[0] == (32 if target == "atn-paper" else 16)
            assert not g_w[16:].any()
            assert torch.equal(g_w[:16], stage.weight[:16])
            stage.weight[16:] = 0
    g.eval(), atn.eval()
    x, y, v_hat = torch.rand(1, 3, 64, 128), torch.rand(1, 3, 64, 128), torch.randn(1, 24, 4, 8)
    with torch.no_grad():  # same latent (the priors round differently), same y
        out = g.decode_x(v_hat, g.side(y, x))
        torch.testing.assert_close(out, atn.decode_x(v_hat, atn.side(y, x)))
        assert not torch.equal(out, g.decode_x(v_hat, g.side(torch.rand_like(y), x)))  # w reads y
    if target == "ndic":  # the same hyperprior: atn's bitstream
        g.update(force=True), atn.update(force=True)
        assert g.compress(x, 2.0)["strings"] == atn.compress(x, 2.0)["strings"]


def test_training_with_a_frozen_encoder_and_latent_codec_keeps_the_bitstream(tmp_path, tiny_stereo):
    """The decoder-side graft run: E_x and the latent codec frozen (same bytes as before),
    D_x's first stage trains only the weights that read w (its 24 v̂_x inputs stay)."""
    from wzcodec.errors import WzError
    from wzcodec.models import build
    from wzcodec.training.params import freeze_input_channels
    from wzcodec.weights import load_weights, save_weights

    small = {"N": 16, "M": 24, "levels": 3, "attn_dim": 8, "heads": 2, "window": 3}
    torch.manual_seed(0)
    start = build("atn", **small)
    save_weights(start, tmp_path / "init", "atn", fp16=False)
    cfg = tiny_config(
        tmp_path / "c.yaml",
        tiny_stereo,
        model="atn",
        model_config=small,
        init_from=str(tmp_path / "init/atn.safetensors"),
        freeze=["e_x.", "latent."],
        freeze_input_channels={"d_x.0.0.weight": 24},
        steps=3,
        val_every=100,
    )
    train(cfg, tmp_path / "run", progress=False)
    trained = build("atn", **small)
    path = export(tmp_path / "run/checkpoint.pt", tmp_path / "w", fp16=False)
    trained.load_state_dict(load_weights(path))
    before, after = start.d_x[0][0].weight, trained.d_x[0][0].weight  # (in = 24 + 24, out, k, k)
    assert torch.equal(after[:24], before[:24]) and not torch.equal(after[24:], before[24:])
    assert not torch.equal(trained.d_x[1][0].weight, start.d_x[1][0].weight)
    x = torch.rand(1, 3, 64, 128)
    for m in (start, trained):
        m.eval(), m.update(force=True)
    with torch.no_grad():
        for q in (1.0, 2.5):
            assert trained.compress(x, q)["strings"] == start.compress(x, q)["strings"]
    with pytest.raises(WzError, match="not a convolution weight"):
        freeze_input_channels(trained, {"d_x.0.1.beta": 4})


def test_coarse_latent_coarsens_only_the_training_decoder_input_with_probability_p(tmp_path):
    from wzcodec.models import build

    torch.manual_seed(0)
    model = build("ndic", N=16, M=24, levels=3)
    v = torch.randn(8, 24, 4, 6) * 3
    v_hat = torch.round(v)
    model.coarse_latent = {"p": 0.0, "max_factor": 4}
    assert torch.equal(model.coarsen(v, v_hat, 1.0), v_hat)  # p = 0: v̂_x itself
    model.coarse_latent = {"p": 1.0, "max_factor": 4}
    out = model.coarsen(v, v_hat, 1.0)
    step = 1 / model.latent.gains(1.0)[0]
    for i in range(8):  # each sample on its own grid, f times the level's step, f in [1, 4]
        levels = (out[i] / step[0]).flatten()
        f = (levels[levels != 0].abs().min()).item()
        assert 1.0 <= f <= 4.0 + 1e-4
        assert (out[i] - v[i]).abs().max() <= 0.5 * 4 * step.max() + 1e-5
    model = build("ndic", N=16, M=24, levels=3, w_noise=0.0, side_dropout=0.0)
    x = torch.rand(2, 3, 64, 64)

    def decoded(mode: str, spec: dict | None) -> torch.Tensor:
        model.coarse_latent = spec
        model.train(mode == "train")
        torch.manual_seed(1)  # the latent's training noise, the draw of f
        return model(x, x, 1.0)["x_hat"]

    coarse = {"p": 1.0, "max_factor": 4}
    assert not torch.allclose(decoded("train", coarse), decoded("train", None))
    assert torch.equal(decoded("eval", coarse), decoded("eval", None))  # never at inference
    refused_before_writing(
        tmp_path,
        "hyperprior",
        "coarse_latent: {p: 0.5, max_factor: 4}",
        "coarse_latent: hyperprior has no side path",
    )


def test_without_alpha_and_beta_training_skips_the_y_decoder_and_the_side_rates():
    from wzcodec.models import build
    from wzcodec.models.loss import RateDistortionLoss

    model = build("ndic", N=16, M=24, levels=3).train()
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    lmbda = torch.full((2,), 0.01)
    full = model(x, y, 1.0)
    assert {"y_hat", "likelihoods_y", "likelihoods_w"} <= set(full)
    model.decode_y = False
    lean = model(x, y, 1.0)
    assert not {"y_hat", "likelihoods_y", "likelihoods_w"} & set(lean)
    loss = RateDistortionLoss("mse", 0.0, 0.0)(lean, x, y, lmbda)["loss"]
    loss.backward()  # the α = β = 0 loss needs nothing the lean pass leaves out
    assert model.d_x[0][0].weight.grad is not None and model.d_y[3].weight.grad is None
