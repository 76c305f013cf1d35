"""wz train / export / eval: a tiny run, exact resume after SIGKILL, 2-process DDP, eval outputs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import wzcodec
from tests.conftest import run_cli, tiny_config
from wzcodec.training import train
from wzcodec.weights import export

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_tiny_run_logs_checkpoints_and_exports_loadable_weights(tmp_path, tiny_stereo, motorcycle):
    cfg = tiny_config(tmp_path / "c.yaml", tiny_stereo, steps=4, val_every=2)
    metrics = train(cfg, tmp_path / "run", progress=False)
    assert metrics["step"] == 4 and "val_psnr_q1" in metrics
    with open(tmp_path / "run/log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert "val_bpp_q1" in json.loads(rows[1]["val"])
    assert _state(tmp_path / "run/checkpoint.pt")["step"] == 4
    assert list((tmp_path / "run/tb").iterdir())  # TensorBoard event file
    path = export(tmp_path / "run/checkpoint.pt", tmp_path / "w", name="tiny")
    codec = wzcodec.load("hyperprior", weights=path, quality=2)
    x = motorcycle[0][:64, :96]
    assert codec.decode(codec.encode(x)).shape == x.shape


def test_resume_after_sigkill_reproduces_the_uninterrupted_run(tmp_path, tiny_stereo):
    steps = 24  # enough that the run is still going when the poll below sees step 3
    cfg = tiny_config(
        tmp_path / "c.yaml", tiny_stereo, steps=steps, checkpoint_every_steps=1, val_every=100
    )
    torch.set_num_threads(1)
    try:
        train(cfg, tmp_path / "straight", progress=False)
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wzcodec",
                "train",
                "--config",
                str(cfg),
                "--out",
                str(tmp_path / "killed"),
            ],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        ckpt = tmp_path / "killed/checkpoint.pt"
        deadline = time.time() + 120
        while time.time() < deadline:
            if ckpt.exists() and _state(ckpt)["step"] >= 3:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed_at = _state(ckpt)["step"]
        assert killed_at < steps, "the run finished before it could be killed"
        train(cfg, tmp_path / "killed", resume=True, progress=False)
    finally:
        torch.set_num_threads(os.cpu_count() or 1)
    a, b = _state(tmp_path / "straight/checkpoint.pt"), _state(ckpt)
    assert a["step"] == b["step"] == steps
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert not list((tmp_path / "killed").glob(".*.tmp"))  # no torn temporary files left
    with open(tmp_path / "killed/log.csv") as f:  # rows after the checkpoint were not kept twice
        assert [int(r["step"]) for r in csv.DictReader(f)] == list(range(1, steps + 1))


def test_sigterm_stops_after_the_step_and_leaves_a_fresh_checkpoint(tmp_path, tiny_stereo):
    cfg = tiny_config(tmp_path / "c.yaml", tiny_stereo, steps=10_000, val_every=10_000, log_every=1)
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wzcodec", "train", "--config", str(cfg), "--out", str(out)],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not (
        (out / "log.csv").exists() and len((out / "log.csv").read_text().splitlines()) > 3
    ):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "SIGTERM: stopping after this step" in err
    step = _state(out / "checkpoint.pt")["step"]
    assert 3 <= step < 10_000  # the checkpoint holds the last finished step, not an old one
    with open(out / "log.csv") as f:
        assert int(list(csv.DictReader(f))[-1]["step"]) == step


def test_two_process_ddp_smoke_run(tmp_path, tiny_stereo):
    cfg = tiny_config(tmp_path / "c.yaml", tiny_stereo, steps=3, val_every=100)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            "--master_port=29517",
            "-m",
            "wzcodec",
            "train",
            "--config",
            str(cfg),
            "--out",
            str(tmp_path / "ddp"),
        ],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    state = _state(tmp_path / "ddp/checkpoint.pt")
    assert state["step"] == 3 and len(state["rng"]) == 2  # both ranks' generators saved
    with open(tmp_path / "ddp/log.csv") as f:
        assert len(list(csv.DictReader(f))) == 3  # only rank 0 wrote


@pytest.mark.parametrize("models", ["hyperprior,jpeg"])
def test_eval_writes_csv_summary_bd_rate_and_plots(tmp_path, tiny_stereo, models):
    out_dir = str(tmp_path / "ev")
    args = ["--split", "test", "--models", models, "--qualities", "1,3,6", "--out", out_dir]
    code, out, err = run_cli("eval", "--data", f"stereo:{tiny_stereo}", *args)
    assert code == 0, err
    with open(tmp_path / "ev/per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * (3 + 9)  # 2 pairs x (3 learned rate points + 9 JPEG qualities)
    summary = json.loads((tmp_path / "ev/summary.json").read_text())
    assert summary["bd_rate"]["psnr"]["all"]["hyperprior"] == pytest.approx(0.0, abs=1e-6)
    for name in ("rd_psnr.png", "rd_msssim.png", "bd_rate.csv"):
        assert (tmp_path / "ev" / name).stat().st_size > 0
    assert "BD-rate vs hyperprior" in out


def test_eval_merge_adds_a_method_to_an_earlier_run_and_refuses_other_images(tmp_path, tiny_stereo):
    data = ["--data", f"stereo:{tiny_stereo}", "--split", "test"]
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    code, _, err = run_cli(
        "eval", *data, "--models", "hyperprior", "--qualities", "1,6", "--out", first
    )
    assert code == 0, err
    code, _, err = run_cli("eval", *data, "--models", "jpeg", "--merge", first, "--out", second)
    assert code == 0, err
    with open(tmp_path / "second/per_image.csv") as f:
        models = [r["model"] for r in csv.DictReader(f)]
    assert models.count("hyperprior") == 2 * 2 and models.count("jpeg") == 2 * 9
    bd = json.loads((tmp_path / "second/summary.json").read_text())["bd_rate"]["psnr"]["all"]
    assert set(bd) == {"hyperprior", "jpeg"}
    other = str(tmp_path / "other")
    code, _, err = run_cli(
        "eval", "--data", f"stereo:{tiny_stereo}", "--split", "train", "--models", "jpeg",
        "--merge", first, "--out", other,
    )  # fmt: skip
    assert code == 2 and "cannot merge" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "other").exists()


def test_eval_with_worker_processes_gives_the_same_rows(tiny_stereo, monkeypatch):
    from wzcodec.evaluate import evaluate, load_pairs

    monkeypatch.setattr("wzcodec.evaluate.os.cpu_count", lambda: 4)  # else capped to 1 here
    pairs = load_pairs(f"stereo:{tiny_stereo}", "test", "native")
    kw = {"models": ["jpeg", "hyperprior"], "qualities": [2], "progress": False}
    one, two = evaluate(pairs, **kw), evaluate(pairs, workers=2, **kw)

    def timeless(rows):  # JSON, so that NaN (no estimate for JPEG) equals NaN
        skip = ("_s", "bpp_est")
        return json.dumps([{k: v for k, v in r.items() if not k.endswith(skip)} for r in rows])

    assert timeless(one) == timeless(two)  # the bytes, PSNR and MS-SSIM: exactly
    # The likelihood estimate is float arithmetic whose rounding depends on the thread count
    # (a worker runs one thread): equal to float32 precision, not bit for bit.
    est = [(a["bpp_est"], b["bpp_est"]) for a, b in zip(one, two, strict=True)]
    assert all(a == pytest.approx(b, rel=1e-5, nan_ok=True) for a, b in est)
    assert [r["model"] for r in one][-2:] == ["hyperprior", "hyperprior"]


def test_eval_source_filter_and_published_reference_curves(tmp_path, tiny_stereo):
    ref = tmp_path / "ref.csv"
    ref.write_text("# published\nmethod,bpp,psnr\nbook,0.5,30\nbook,1.0,33\nbook,2.0,36\n")
    out_dir = tmp_path / "ev"
    code, _, err = run_cli(
        "eval", "--data", f"stereo:{tiny_stereo}", "--split", "all", "--source", "oakd",
        "--models", "jpeg", "--anchor", "jpeg", "--reference", str(ref), "--out", str(out_dir),
    )  # fmt: skip
    assert code == 0, err
    with open(out_dir / "per_image.csv") as f:
        assert {r["image"].split("/")[0] for r in csv.DictReader(f)} == {"oakd"}
    summary = json.loads((out_dir / "summary.json").read_text())
    assert [p["psnr"] for p in summary["summary"]["all"]["book (published)"]] == [30, 33, 36]
    assert set(summary["summary"]["all"]) == {"jpeg", "book (published)"}
    assert "book (published)" in summary["bd_rate"]["psnr"]["all"]
    code, _, err = run_cli(
        "eval", "--data", f"stereo:{tiny_stereo}", "--models", "jpeg",
        "--reference", str(tmp_path / "missing.csv"), "--out", str(out_dir),
    )  # fmt: skip
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_every_shipped_config_names_a_registered_model_and_builds(tmp_path):
    from pathlib import Path

    from wzcodec import catalog
    from wzcodec.models import build
    from wzcodec.training import check_config, load_config

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))
    assert {c.stem for c in configs} >= {"hyperprior", "ndic", "atn", "atn-paper", "dsin"}
    for c in configs:
        cfg = load_config(c)
        check_config(cfg)  # no misspelt key is ignored in silence
        model = build(cfg["model"], **cfg.get("model_config", {}))
        if catalog.entry(cfg["model"]).kind == "learned":  # a receiver has its base's qualities
            assert len(cfg["lambdas"]) == model.levels >= 6


def test_configs_hold_one_recipe_per_shipped_weights_file_saying_how_it_was_made():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    configs = {c.stem: c for c in (root / "configs").glob("*.yaml")}
    weights = {w.stem for w in (root / "src/wzcodec/weights").glob("*.safetensors")}
    assert set(configs) == weights and not [p for p in (root / "configs").iterdir() if p.is_dir()]
    for name, c in configs.items():
        header = [line for line in c.read_text().splitlines() if line.startswith("#")]
        assert any("How the shipped weights were made" in line for line in header), name


def test_every_experiment_config_still_passes_the_checks_and_builds():
    from pathlib import Path

    from wzcodec.models import build
    from wzcodec.training import check_config, load_config

    root = Path(__file__).resolve().parents[1] / "experiments"
    configs = sorted(root.rglob("*.yaml"))
    assert len(configs) >= 20
    for c in configs:
        cfg = load_config(c)
        check_config(cfg)
        build(cfg["model"], **cfg.get("model_config", {}))


def test_resume_loads_entropy_tables_of_another_length():
    from wzcodec.models import build

    model = build("hyperprior", N=16, M=24, levels=2)
    model.update(force=True)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    key = next(k for k in state if k.endswith("_quantized_cdf"))
    rows = state[key].shape[0]
    state[key] = torch.arange(rows * 99, dtype=state[key].dtype).reshape(rows, 99)
    fresh = build("hyperprior", N=16, M=24, levels=2)
    fresh.update(force=True)
    fresh.load_state_dict(state)  # CompressAI's own loader raises a size mismatch here
    assert torch.equal(fresh.state_dict()[key], state[key])


def test_equal_bpp_comparison_interpolates_the_other_curve_per_image(tmp_path):
    from wzcodec import reports as mod

    rows = ["model,quality,image,bpp,psnr", "a,1,i,0.5,31", "a,2,i,3.0,40"]
    rows += ["b,10,i,0.2,28", "b,20,i,1.0,32"]
    (tmp_path / "p.csv").write_text("\n".join(rows) + "\n")
    # at 0.5 bpp b interpolates to 29.5 dB: a wins by 1.5; a's 3.0 bpp is outside b's curve
    assert mod.compare(str(tmp_path / "p.csv"), "a", "b") == [(1.0, 1, 1, 1.5)]


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


def test_side_gap_table_compares_each_stress_run_with_the_true_y_on_its_own_images():
    from wzcodec import reports as mod

    def row(model, image, psnr):
        return {"model": model, "quality": 1.0, "image": image, "psnr": psnr}

    # the true-y run has an image (c) the stress runs did not code: it must not count
    true = [row("atn", "a", 30.0), row("atn", "b", 32.0), row("atn", "c", 10.0)]
    runs = {
        "other": [row("atn", "a", 29.0), row("atn", "b", 31.5)],
        "none": [row("atn", "a", 30.0), row("atn", "b", 32.0)],
    }
    (r,) = mod.side_gaps(true, runs)
    assert r["true"] == 31.0 and r["other"] == 30.25 and r["other_gap"] == 0.75
    table = mod.markdown([r], ["other", "none"])
    assert "| atn, q1 | 31.00 | 30.25 (gap +0.750 dB) |" in table


def test_bd_rate_table_takes_each_method_from_the_first_run_and_refuses_other_images():
    from wzcodec import reports as mod
    from wzcodec.errors import WzError

    a = [{"model": "atn", "image": "i", "psnr": 30.0}, {"model": "hyperprior", "image": "i"}]
    b = [{"model": "atn", "image": "i", "psnr": 29.0}, {"model": "heic", "image": "i"}]
    rows = mod.combined_rows([a, b])
    assert [r["model"] for r in rows] == ["atn", "hyperprior", "heic"]
    assert rows[0]["psnr"] == 30.0
    with pytest.raises(WzError, match="cannot merge"):
        mod.combined_rows([a, [{"model": "heic", "image": "j"}]])


@pytest.mark.parametrize("name", ["ndic", "atn"])
def test_graft_with_zero_side_scale_codes_and_decodes_as_the_hyperprior(tmp_path, name):
    import importlib.util
    from pathlib import Path

    from wzcodec.models import build
    from wzcodec.weights import save_weights

    path = Path(__file__).resolve().parents[1] / "scripts/graft.py"
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


def _graft_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts/graft_from_atn.py"
    spec = importlib.util.spec_from_file_location("graft_from_atn", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("target", ["atn-paper", "ndic"])
def test_graft_from_atn_keeps_atns_ndic_part_and_starts_as_atn_without_its_cams(tmp_path, target):
    from wzcodec.models import build
    from wzcodec.weights import save_weights

    torch.manual_seed(0)
    atn = build("atn", N=16, M=24, levels=2, attn_dim=8, heads=2, window=3)
    save_weights(atn, tmp_path / "atn", "atn", fp16=False)
    size = {"height": 64, "width": 128} if target == "atn-paper" else {}
    g = _graft_script().graft(tmp_path / "atn/atn.safetensors", target, **size)
    assert g.model_name == target
    assert torch.equal(g.e_x[0].weight, atn.e_x[0].weight)
    assert torch.equal(g.latent.log_gain_y, atn.latent.log_gain_y)
    with torch.no_grad():  # atn with its CAM inputs cut decodes as the graft does
        for stage in (atn.d_x[1][0], atn.d_x[2][0], atn.d_x[3]):
            g_w = dict(g.named_parameters())[_name(atn, stage)]
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


def _name(model: torch.nn.Module, module: torch.nn.Module) -> str:
    return next(n for n, m in model.named_modules() if m is module) + ".weight"


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


def test_compiled_transforms_train_as_the_eager_model(tmp_path, tiny_stereo):
    """``compile: true`` compiles the GDN transforms for the training step only: the same
    losses as eager (fp32, to float precision), and the model still validates eagerly."""
    from torch._dynamo.utils import counters

    small = {"N": 16, "M": 24, "levels": 3, "attn_dim": 16, "heads": 2}
    losses = {}
    for compiled in (False, True):
        cfg = tiny_config(
            tmp_path / f"c{compiled}.yaml", tiny_stereo, model="atn", model_config=small,
            steps=3, val_every=3, compile=compiled,
        )  # fmt: skip
        graphs = counters["stats"]["unique_graphs"]
        metrics = train(cfg, tmp_path / f"run{compiled}", progress=False)
        assert "val_psnr_q1" in metrics
        assert (counters["stats"]["unique_graphs"] > graphs) == compiled
        with open(tmp_path / f"run{compiled}/log.csv") as f:
            losses[compiled] = [float(r["loss"]) for r in csv.DictReader(f)]
    assert losses[True] == pytest.approx(losses[False], rel=1e-3)


def test_lr_mult_sets_the_learning_rate_by_name_prefix_and_refuses_unknown_prefixes():
    from wzcodec.errors import WzError
    from wzcodec.models import build
    from wzcodec.training.params import param_groups

    model = build("atn", N=16, M=24, levels=3, attn_dim=16, heads=2)
    cfg = {"lr_mult": {"cams.": 5.0, "cams.2.to_q": 0.5}, "freeze": ["e_x."]}
    groups, _ = param_groups(model, set(), **cfg)
    mult = {id(p): g["lr_mult"] for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert mult[id(named["cams.0.to_q.weight"])] == 5.0
    assert mult[id(named["cams.2.to_q.weight"])] == 0.5  # the longest prefix wins
    assert mult[id(named["d_x.0.0.weight"])] == 1.0
    assert id(named["e_x.0.weight"]) not in mult
    with pytest.raises(WzError, match="lr_mult"):
        param_groups(model, set(), lr_mult={"camz.": 2.0})


def test_compile_without_a_cpp_compiler_is_one_line_and_writes_nothing(
    tmp_path, tiny_stereo, monkeypatch
):
    import torch._inductor.cpp_builder as cpp_builder

    def missing():
        raise RuntimeError("no working C++ compiler found")

    monkeypatch.setattr(cpp_builder, "get_cpp_compiler", missing)
    cfg = tiny_config(tmp_path / "c.yaml", tiny_stereo, compile=True)
    code, _, err = run_cli("train", "--config", str(cfg), "--out", str(tmp_path / "run"))
    assert code == 2 and "C++ compiler" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_side_curriculum_replaces_y_by_a_shifted_relit_x_with_probability_p():
    from wzcodec.training.data import easy_side

    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(6, 3, 16, 32), torch.rand(6, 3, 16, 32)
    assert torch.equal(easy_side(x, y, 0.0, 8, gen), y)  # p = 0: the real side images
    out = easy_side(x, y, 1.0, 0, gen)  # p = 1, no shift: x with a gain and an offset
    for i in range(6):
        a, b = x[i].flatten(), out[i].flatten()
        inside = (b > 0) & (b < 1)
        slope = (
            torch.linalg.lstsq(
                torch.stack([a[inside], torch.ones_like(a[inside])], 1), b[inside, None]
            )
            .solution[0]
            .item()
        )
        assert 0.85 <= slope <= 1.15
    shifted = easy_side(x, y, 1.0, 4, torch.Generator().manual_seed(1))
    again = easy_side(x, y, 1.0, 4, torch.Generator().manual_seed(1))
    assert torch.equal(shifted, again)  # drawn from the run's checkpointed generator
    assert not torch.allclose(shifted, y)


def test_a_misspelt_config_key_is_refused_in_one_line_before_anything_is_written(
    tmp_path, tiny_stereo
):
    cfg = tiny_config(tmp_path / "c.yaml", tiny_stereo, lr_drop_after_minute=[5.0])
    code, _, err = run_cli("train", "--config", str(cfg), "--out", str(tmp_path / "run"))
    assert code == 2 and "lr_drop_after_minute" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
    cfg = tiny_config(tmp_path / "d.yaml", tiny_stereo)
    bad = "data={tarin: [stereo:x]}"  # through --set, which is checked the same way
    code, _, err = run_cli(
        "train", "--config", str(cfg), "--set", bad, "--out", str(tmp_path / "run")
    )
    assert code == 2 and "data.tarin" in err and not (tmp_path / "run").exists()


def test_every_config_key_train_accepts_is_documented_in_the_training_guide():
    from pathlib import Path

    from wzcodec.training.config import CONFIG_KEYS, DATA_KEYS

    guide = (Path(__file__).resolve().parents[1] / "docs/training.md").read_text()
    assert not [k for k in sorted(CONFIG_KEYS | DATA_KEYS) if f"`{k}`" not in guide]


def test_oracle_side_mode_gives_x_itself_and_every_side_mode_is_a_cli_choice():
    import numpy as np

    from wzcodec.cli import build_parser
    from wzcodec.evaluate import SIDE_MODES, side_image

    x, y = np.zeros((8, 40, 3), np.uint8), np.full((8, 40, 3), 200, np.uint8)
    pairs = [("p0", x, y), ("p1", y, x)]
    assert side_image(pairs, 0, "oracle") is x and side_image(pairs, 0, "true") is y
    for mode in SIDE_MODES:
        args = build_parser().parse_args(["eval", "--data", "d", "--out", "o", "--side", mode])
        assert args.side == mode


def test_shifted_copies_move_x_by_the_tokens_they_return():
    from wzcodec.training.data import shifted_copies

    gen = torch.Generator().manual_seed(0)
    x = 0.3 + 0.4 * torch.rand(6, 3, 64, 96)  # no clamping after gain and offset
    y, dk, dr = shifted_copies(x, 32, gen)
    assert dk.abs().max() <= 4 and dr.abs().max() <= 1 and len(set(dk.tolist())) > 1
    for i in range(6):
        back = y[i].roll((-8 * int(dr[i]), -8 * int(dk[i])), dims=(-2, -1))
        a, b = x[i].flatten() - x[i].mean(), back.flatten() - back.mean()
        assert (a @ b) / (a.norm() * b.norm()) > 0.9999  # the same picture, relit


def _refused_before_writing(tmp_path, model: str, option: str, message: str) -> None:
    """A one-step config of ``model`` with ``option`` fails with ``message``, writing nothing."""
    from wzcodec.errors import WzError
    from wzcodec.training import train

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"model: {model}\ndata: {{train: stereo:none}}\nlambdas: [0.01]\nbatch: 1\n"
        f"lr: 1.0e-4\nsteps: 1\n{option}\n"
    )
    with pytest.raises(WzError, match=message):
        train(cfg, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_match_loss_config_needs_a_model_with_attention(tmp_path, monkeypatch):
    _refused_before_writing(
        tmp_path,
        "ndic",
        "match_loss: {weight: 1.0, max_shift: 16}",
        "match_loss: ndic has no band attention",
    )


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
    _refused_before_writing(
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
