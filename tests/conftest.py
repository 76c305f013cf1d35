from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np
import pytest

warnings.filterwarnings("ignore", category=FutureWarning)

SAMPLES = Path(__file__).resolve().parents[1] / "src" / "wzcodec" / "samples"


@pytest.fixture(scope="session")
def motorcycle() -> tuple[np.ndarray, np.ndarray]:
    """A real colour stereo pair (Middlebury, shipped in scikit-image's wheel), 500x741."""
    from skimage import data

    left, right, _ = data.stereo_motorcycle()
    return np.asarray(left), np.asarray(right)


@pytest.fixture(scope="session")
def oakd() -> tuple[np.ndarray, np.ndarray]:
    """A real gray stereo pair bundled with the package (OAK-D, MIT), 640x480."""
    from wzcodec.images import read_rgb

    return read_rgb(SAMPLES / "oakd/left/desk.png"), read_rgb(SAMPLES / "oakd/right/desk.png")


@pytest.fixture(scope="session")
def codec():
    import wzcodec

    return wzcodec.load("hyperprior", quality=3)


def run_cli(*args: str) -> tuple[int, str, str]:
    """Run ``wz`` in-process: (exit code, stdout, stderr)."""
    from wzcodec.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as e:
            code = e.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="session")
def tiny_stereo(tmp_path_factory, motorcycle) -> Path:
    """A stereo folder (<source>/{left,right}/<id>.png + splits.csv) made from repository data
    only: the bundled OAK-D pairs (train) and scikit-image's motorcycle pair (test)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("stereo")
    rows = ["source,id,split,scene_group,width,height,channels,left,right"]
    for view in ("left", "right"):
        (root / "oakd" / view).mkdir(parents=True)
        (root / "mb" / view).mkdir(parents=True)
    for name in ("desk", "corridor"):
        for view in ("left", "right"):
            (root / f"oakd/{view}/{name}.png").write_bytes(
                (SAMPLES / f"oakd/{view}/{name}.png").read_bytes()
            )
        rows.append(
            f"oakd,{name},train,{name},640,480,gray,oakd/left/{name}.png,oakd/right/{name}.png"
        )
    x, y = motorcycle
    Image.fromarray(np.ascontiguousarray(x[200:440, 300:660])).save(root / "mb/left/moto.png")
    Image.fromarray(np.ascontiguousarray(y[200:440, 300:660])).save(root / "mb/right/moto.png")
    Image.fromarray(np.ascontiguousarray(x[:200, :300])).save(root / "mb/left/moto2.png")
    Image.fromarray(np.ascontiguousarray(y[:200, :300])).save(root / "mb/right/moto2.png")
    rows.append("mb,moto,test,moto,360,240,rgb,mb/left/moto.png,mb/right/moto.png")
    rows.append("mb,moto2,test,moto,300,200,rgb,mb/left/moto2.png,mb/right/moto2.png")
    (root / "splits.csv").write_text("\n".join(rows) + "\n")
    return root


def tiny_config(path: Path, data: Path, model: str = "hyperprior", **overrides) -> Path:
    """A YAML config for a seconds-long training run on ``data`` (a stereo folder)."""
    import yaml

    cfg = {
        "model": model,
        "model_config": {"N": 16, "M": 24, "levels": 3},
        "data": {"train": [f"stereo:{data}"], "val": f"stereo:{data}", "val_count": 1},
        "crop": 64,
        "batch": 2,
        "distortion": "mse",
        "lambdas": [0.002, 0.01, 0.05],
        "lr": 1e-4,
        "lr_warmup": 2,
        "aux_lr": 1e-3,
        "clip": 1.0,
        "steps": 6,
        "bf16": False,
        "seed": 0,
        "val_every": 3,
        "log_every": 1,
        "checkpoint_minutes": 60,
    }
    cfg.update(overrides)
    path.write_text(yaml.safe_dump(cfg))
    return path
