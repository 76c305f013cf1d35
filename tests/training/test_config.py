"""Training configs (``training/config.py``): every shipped and experiment config checks and
builds, unknown keys are refused, every key is documented."""

from __future__ import annotations

import os

import pytest

from tests.conftest import run_cli, tiny_config
from tests.helpers import refused_before_writing

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def test_every_shipped_config_names_a_registered_model_and_builds(tmp_path):
    from pathlib import Path

    from wzcodec import catalog
    from wzcodec.models import build
    from wzcodec.training import check_config, load_config

    configs = sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.yaml"))
    assert {c.stem for c in configs} >= {"hyperprior", "ndic", "atn", "atn-paper", "dsin"}
    for c in configs:
        cfg = load_config(c)
        check_config(cfg)  # no misspelt key is ignored in silence
        model = build(cfg["model"], **cfg.get("model_config", {}))
        if catalog.entry(cfg["model"]).kind == "learned":  # a receiver has its base's qualities
            assert len(cfg["lambdas"]) == model.levels >= 6


def test_configs_hold_one_recipe_per_shipped_weights_file_saying_how_it_was_made():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
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

    root = Path(__file__).resolve().parents[2] / "experiments"
    configs = sorted(root.rglob("*.yaml"))
    assert len(configs) >= 20
    for c in configs:
        cfg = load_config(c)
        check_config(cfg)
        build(cfg["model"], **cfg.get("model_config", {}))


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

    guide = (Path(__file__).resolve().parents[2] / "docs/training.md").read_text()
    assert not [k for k in sorted(CONFIG_KEYS | DATA_KEYS) if f"`{k}`" not in guide]


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


def test_match_loss_config_needs_a_model_with_attention(tmp_path, monkeypatch):
    refused_before_writing(
        tmp_path,
        "ndic",
        "match_loss: {weight: 1.0, max_shift: 16}",
        "match_loss: ndic has no band attention",
    )
