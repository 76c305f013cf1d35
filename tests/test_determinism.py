"""The same .wz decodes to bit-identical pixels whatever process or thread count decodes it,
and encoding does not depend on the encoder's thread count either."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import wzcodec

SCRIPT = textwrap.dedent(
    """
    import hashlib, sys, warnings
    from pathlib import Path
    import numpy as np, torch
    warnings.filterwarnings("ignore")
    threads, folder, model = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    torch.set_num_threads(threads)
    import wzcodec
    codec = wzcodec.load(model)
    for p in sorted(folder.glob("*.npy")):  # encode, then decode the first process's files
        data = codec.encode(np.load(p), quality=float(p.stem[-1]))
        p.with_suffix(f".{threads}.wz").write_bytes(data)
        wz = p.with_suffix(".1.wz")
        out = codec.decode(wz.read_bytes(), side=np.load(p))
        print(wz.name, hashlib.sha256(out.tobytes()).hexdigest())
    """
)


def _run(tmp_path: Path, threads: int, model: str) -> list[str]:
    r = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(threads), str(tmp_path), model],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout.split("\n")


@pytest.mark.parametrize("model", wzcodec.available())
def test_decoding_is_bit_identical_across_processes_and_thread_counts(
    tmp_path, motorcycle, oakd, model
):
    images = [
        motorcycle[0][:200, :320],
        motorcycle[0][250:, 300:],
        oakd[0][:240, :320],
        oakd[0][100:, 200:],
    ]
    if model == "atn-paper":  # its one size, 128x256
        images = [a[-128:, -256:] for a in images]
    for i, img in enumerate(images):  # quality cycles over 1..6 through the file name's last digit
        np.save(tmp_path / f"img{i}_q{1 + (2 * i) % 6}.npy", np.ascontiguousarray(img))
    one, two = _run(tmp_path, 1, model), _run(tmp_path, 2, model)  # each encodes, then decodes
    for p in tmp_path.glob("*.1.wz"):  # encoder thread count does not change a byte
        assert p.read_bytes() == p.with_name(p.name.replace(".1.wz", ".2.wz")).read_bytes()
    assert one == two and len(one) > len(images)
    codec = wzcodec.load(model)  # and this process, with its own thread count, agrees
    import hashlib

    for line in filter(None, one):
        name, digest = line.split()
        src = tmp_path / (name.split(".")[0] + ".npy")
        out = codec.decode((tmp_path / name).read_bytes(), side=np.load(src))
        assert hashlib.sha256(out.tobytes()).hexdigest() == digest
