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
