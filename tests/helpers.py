"""Helpers several test files share (no tests here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def checkpoint_state(path):
    """A training checkpoint's contents."""
    return torch.load(path, map_location="cpu", weights_only=True)


def graft_script():
    """``scripts/graft_from_atn.py`` as a module."""
    path = ROOT / "scripts/graft_from_atn.py"
    spec = importlib.util.spec_from_file_location("graft_from_atn", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def weight_name(model: torch.nn.Module, module: torch.nn.Module) -> str:
    """The state-dict name of ``module``'s weight inside ``model``."""
    return next(n for n, m in model.named_modules() if m is module) + ".weight"


def refused_before_writing(tmp_path, model: str, option: str, message: str) -> None:
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
