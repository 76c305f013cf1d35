"""The flow receiver (wzcodec.receiver): alignment, fusion net, its trainer, and the
"encoder sees y" ceiling it is measured against."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from wzcodec.images import to_tensor
from wzcodec.metrics import psnr
from wzcodec.models import build
from wzcodec.receiver.align import align, align_many


def _shifted(x: np.ndarray, dx: int) -> np.ndarray:
    """x moved ``dx`` columns to the left (a stereo right view of one flat disparity)."""
    return np.ascontiguousarray(np.concatenate([x[:, dx:], x[:, -dx:][:, ::-1]], 1))


def test_flow_undoes_a_shift_and_marks_where_it_leaves_the_frame(motorcycle):
    x = motorcycle[0][100:356, 100:484]
    y = _shifted(x, 12)
    a = align(x, y)
    inner = (slice(8, -8), slice(24, -8))
    assert psnr(x[inner], (a.y[inner] * 255).round().astype(np.uint8)) > 35
    assert psnr(x, y) < 25  # the shift itself costs a lot
    # x(p) = y(p - 12): x's first 12 columns have no partner; the flow points out of y there
    assert a.conf[:, :4, 1].mean() < 0.2 and a.conf[:, 24:, 1].mean() > 0.95
    assert a.trust[inner].mean() > 0.5


def test_an_unrelated_side_image_is_trusted_less_than_the_true_one(motorcycle, oakd):
    x, y = motorcycle[0][:480, :640], motorcycle[1][:480, :640]
    true, other = align(x, y), align(x, oakd[1])
    assert other.trust.mean() < 0.5 * true.trust.mean()


def test_several_sides_take_per_pixel_the_most_trusted(motorcycle, oakd):
    x, y = motorcycle[0][:480, :640], motorcycle[1][:480, :640]
    both = align_many(x, [oakd[1], y])
    true = align(x, y)
    assert both.trust.mean() >= true.trust.mean() - 1e-6
    picked_true = np.all(both.y == true.y, axis=2).mean()
    assert picked_true > 0.8


@pytest.fixture(scope="module")
def flow_model():
    torch.manual_seed(0)
    return build("avif-si", align="flow", width=8, depth=2, blocks=1, middle=1).eval()


def test_untrained_flow_receiver_returns_the_base_decode_exactly(flow_model, motorcycle):
    x_hat, y = (to_tensor(m[:120, :200])[None] for m in motorcycle)
    with torch.no_grad():
        assert torch.equal(flow_model.refine(x_hat, y, bpp=0.1), x_hat)
        assert flow_model.refine(x_hat, None, bpp=0.1) is x_hat


def test_the_fusion_net_sees_the_rate_and_the_side_image(motorcycle):
    torch.manual_seed(0)
    m = build("avif-si", align="flow", width=8, depth=2, blocks=1, middle=1).eval()
    for p in m.receiver.fusion.parameters():  # as after training: nothing left at zero
        torch.nn.init.normal_(p, std=0.1)
    x_hat, y = (to_tensor(im[:120, :200])[None] for im in motorcycle)
    with torch.no_grad():
        low, high = m.refine(x_hat, y, bpp=0.05), m.refine(x_hat, y, bpp=2.0)
        other = m.refine(x_hat, y.flip(-1), bpp=0.05)
    assert (low - high).abs().mean() > 1e-4
    assert (low - other).abs().mean() > 1e-4


def _flow_config(path, data, **kw) -> dict:
    cfg = {
        "model": "avif-si",
        "model_config": {"align": "flow", "width": 8, "depth": 2, "blocks": 1, "middle": 1},
        "bases": ["avif"],
        "qualities": {"avif": [20, 60]},
        "data": {"train": [f"stereo:{data}"], "val_count": 1},
        "val_hold": 2,
        "cache": str(path / "dec"),
        "aligned_cache": str(path / "al"),
        "aligned_per_pair": 2,
        "crop": [64, 64],
        "batch": 2,
        "lr": 1e-3,
        "steps": 4,
        "val_every": 2,
        "log_every": 2,
        **kw,
    }
    (path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return path / "c.yaml"


def test_flow_training_logs_the_side_gap_and_resumes_exactly(tmp_path, tiny_stereo):
    from wzcodec.training import train

    torch.set_num_threads(1)
    cfg = _flow_config(tmp_path, tiny_stereo)
    train(cfg, tmp_path / "straight", progress=False)
    train(cfg, tmp_path / "split", progress=False, max_steps=2)
    train(cfg, tmp_path / "split", progress=False, resume=True)
    a = torch.load(tmp_path / "straight/checkpoint.pt", weights_only=False)
    b = torch.load(tmp_path / "split/checkpoint.pt", weights_only=False)
    assert a["step"] == b["step"] == 4
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    log = (tmp_path / "straight/log.csv").read_text()
    for key in ("val_gain_true", "val_gain_other", "val_gain_none"):
        assert key in log


def test_a_snapshot_of_a_flow_run_ships_and_refines_any_avif_si_file(tmp_path, tiny_stereo, oakd):
    import importlib.util
    from pathlib import Path

    import wzcodec
    from wzcodec.training import train

    torch.set_num_threads(1)
    train(_flow_config(tmp_path, tiny_stereo), tmp_path / "run", progress=False)
    path = Path(__file__).resolve().parents[1] / "experiments/flow-receiver/snapshot.py"
    spec = importlib.util.spec_from_file_location("snapshot", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main([str(tmp_path / "run"), "--out", str(tmp_path / "w")])
    new = wzcodec.load("avif-si", weights=tmp_path / "w/refiner-si.safetensors")
    assert new.model.receiver is not None and new.weights_id != wzcodec.load("avif-si").weights_id
    x, y = oakd
    data = wzcodec.load("avif-si").encode(x, quality=20)  # coded with the shipped receiver
    assert psnr(x, new.decode(data, side=y)) >= psnr(x, new.decode(data)) - 0.05


def test_an_encoder_that_sees_y_needs_fewer_bits_for_x(motorcycle):
    pytest.importorskip("av")
    from wzcodec.eval.interview import code_pair

    x, y = (np.ascontiguousarray(m[100:356, 100:484]) for m in motorcycle)
    p_bytes, p_hat = code_pair(x, y, 32, inter=True)
    i_bytes, i_hat = code_pair(x, y, 32, inter=False)
    assert p_hat.shape == x.shape and psnr(x, p_hat) > 25 and psnr(x, i_hat) > 25
    assert p_bytes < 0.8 * i_bytes


def test_eval_measures_the_p_frame_ceiling_and_a_decoded_side_image(tiny_stereo):
    from wzcodec.eval.run import evaluate, load_pairs

    pairs = load_pairs(f"stereo:{tiny_stereo}", "test", "native")[:1]
    rows = evaluate(pairs, ["hevc-p", "hevc-i"], progress=False)
    at = {(r["model"], r["quality"]): r for r in rows}
    assert at[("hevc-p", 37)]["bytes"] < at[("hevc-i", 37)]["bytes"]
    kw = {"models": ["avif-si"], "qualities": [20], "progress": False}
    true = evaluate(pairs, side_mode="true", **kw)[0]
    decoded = evaluate(pairs, side_mode="decoded", **kw)[0]
    assert true["bytes"] == decoded["bytes"] and true["psnr"] != decoded["psnr"]


def test_row_attention_starts_as_identity_and_finds_a_shift_along_the_row():
    from wzcodec.receiver.row_attention import RowAttention

    torch.manual_seed(0)
    m = RowAttention(8, window=3)
    x = torch.nn.functional.normalize(torch.randn(1, 8, 6, 20), dim=1)
    y = torch.roll(x, 2, dims=-1)  # y's pixel c is x's pixel c - 2
    assert torch.equal(m(x, y), x)
    eye = torch.eye(8).view(8, 8, 1, 1)
    with torch.no_grad():  # queries and keys that compare raw features; values copied out
        for conv in (m.q, m.k, m.v, m.out):
            conv.weight.copy_(eye)
            conv.bias.zero_()
        m.q.weight.mul_(100)
        m.beta.fill_(1.0)
    m.norm_x = m.norm_y = torch.nn.Identity()
    found = (m(x, y) - x)[..., 3:-3]  # away from the repeated edges
    assert (found - x[..., 3:-3]).abs().mean() < 0.01  # each pixel found at shift +2


def test_best_classical_anchor_is_the_strongest_codec_at_each_quality():
    from wzcodec.eval.results import bd_table

    def curve(scale, qs=(28, 31, 34, 37, 40)):
        return [{"bpp": scale * 2 ** ((q - 28) / 4), "psnr": q} for q in qs]

    # jpeg is cheaper below 34 dB, avif above: the envelope beats each alone
    models = {
        "jpeg": [*curve(0.05, (28, 31, 34)), {"bpp": 0.3, "psnr": 37}],
        "avif": [{"bpp": 0.1, "psnr": 28}, *curve(0.05)[2:]],
        "mine": curve(0.05),  # as good as the better of the two at every quality
    }
    t = bd_table({"all": models}, "best-classical")["all"]
    assert abs(t["mine"]) < 1.0
    assert t["jpeg"] > 1.0 and t["avif"] > 1.0


def test_the_decoder_s_receiver_gives_the_trainer_s_pixels_without_compressai(motorcycle):
    """avif-si / heic-si decode with ``GatedReceiver`` (no CompressAI import); the weights come
    from the trainer's ``OverCodec``: the same state dict, the same refined pixels."""
    import subprocess
    import sys

    from safetensors.torch import save

    from wzcodec.receiver.gated import load_gated

    torch.manual_seed(0)
    config = {"align": "flow", "width": 8, "depth": 2}
    trainer = build("heic-si", **config).eval()
    for p in trainer.receiver.fusion.parameters():
        p.data.add_(torch.randn_like(p), alpha=0.01)  # a trained net's last layer is not zero
    trainer.gate_heic.copy_(torch.linspace(1.0, 0.0, len(trainer.gate_heic)))
    decoder = load_gated("heic", save(trainer.state_dict()), config)
    x, y = (to_tensor(a[:96, :160])[None] for a in motorcycle)
    with torch.inference_mode():
        for bpp in (0.1, 0.5, 4.0):
            assert torch.equal(decoder.refine(x, [y], bpp), trainer.refine(x, [y], bpp))
    code = "import sys, wzcodec; wzcodec.load('heic-si').model; print('compressai' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
