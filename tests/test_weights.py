"""The shipped weights: size budget, constants intact, loadable by name."""

from __future__ import annotations

import pytest
import torch

import wzcodec
from wzcodec.codec import WEIGHTS_DIR
from wzcodec.models import build

SHIPPED = wzcodec.available()


def test_shipped_weights_fit_the_80_mb_budget():
    total = sum(p.stat().st_size for p in WEIGHTS_DIR.glob("*.safetensors"))
    assert total <= 80e6, f"{total / 1e6:.1f} MB"


def test_all_five_models_and_dsin_atn_ship():
    assert {"hyperprior", "ndic", "atn", "atn-paper", "dsin", "dsin-atn"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_keep_the_models_constant_buffers(name):
    """Likelihood bounds (1e-9), GDN pedestals (2^-36) and the like are constants: written
    through fp16 they become 0 and the likelihoods (and the bpp estimate) reach 0 / inf."""
    codec = wzcodec.load(name)
    fresh = build(name, **codec.model.config).state_dict()
    params = {n for n, _ in codec.model.named_parameters()}
    for k, v in codec.model.state_dict().items():
        if k in params or not v.is_floating_point() or k.endswith("scale_table"):
            continue  # the scale table is the codec's own (CodecModel.update), not build()'s
        if k.startswith("gate_"):
            continue  # a refiner's rate gate is fitted after training (test_over_codec)
        assert torch.equal(v, fresh[k]), k


def test_decode_profile_times_every_stage_of_atn_within_the_total():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks/decode_profile.py"
    spec = importlib.util.spec_from_file_location("decode_profile", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    med = mod.profile("atn", (64, 128), repeats=1)
    stages = {"latent", "e_w", "e_y"} | {f"d_x[{i}]" for i in range(4)}
    stages |= {f"d_y[{i}]" for i in range(3)} | {f"cams[{i}]" for i in range(3)}
    assert stages <= med.keys()
    assert all(med[k] > 0 for k in stages)
    assert sum(med[k] for k in stages) <= med["total"]
    assert "d_y[3]" not in med  # D_y's last stage (ŷ) is training-only work
