"""Same pixels before and after a refactor: code a set of files with every model, then check.

    python experiments/refactor-check/pixels.py code runs/prerefactor    # before the change
    python experiments/refactor-check/pixels.py check runs/prerefactor   # after: same pixels?

`code` writes one file per (model, image, quality) and `pixels.json`, the SHA-256 of each
decode (with y, and without y); `check` decodes the files again with the current code and
compares. Images: the bundled OAK-D desk pair (gray) and scikit-image's motorcycle pair
(colour, cropped to 256x384 so the learned models stay quick); atn-paper codes 128x256
crops of both.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

import wzcodec
from wzcodec.catalog import CATALOG

EXTRA = {
    "avif-si-match": ("avif-si", "experiments/over-codec-ablations/refiner-si-match.safetensors")
}


def images() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from PIL import Image
    from skimage import data

    root = Path(wzcodec.__file__).parent / "samples" / "oakd"
    desk = tuple(np.asarray(Image.open(root / s / "desk.png")) for s in ("left", "right"))
    x, y, _ = data.stereo_motorcycle()
    moto = (x[:256, 200:584].copy(), y[:256, 200:584].copy())
    return {"desk": desk, "moto": moto}


def codecs():
    for name in CATALOG:
        yield name, lambda q, n=name: wzcodec.load(n, quality=q)
    for label, (name, weights) in EXTRA.items():
        yield label, lambda q, n=name, w=weights: wzcodec.load(n, quality=q, weights=w)


def digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def qualities(name: str) -> list[int]:
    return (
        [1, 4] if wzcodec.catalog.entry(name.replace("-match", "")).kind == "learned" else [10, 50]
    )


def main(mode: str, folder: Path) -> int:
    imgs = images()
    folder.mkdir(parents=True, exist_ok=True)
    record = json.loads((folder / "pixels.json").read_text()) if mode == "check" else {}
    bad = 0
    for name, make in codecs():
        for q in qualities(name):
            codec = make(q)
            for img, (x, y) in imgs.items():
                if name == "atn-paper":  # its one input size
                    x, y = x[:128, :256], y[:128, :256]
                f = folder / f"{name}-{img}-q{q}.wz"
                if mode == "code":
                    f.write_bytes(codec.encode(x))
                data = f.read_bytes()
                got = {"y": digest(codec.decode(data, side=y)), "none": digest(codec.decode(data))}
                if mode == "code":
                    record[f.name] = got
                elif got != record[f.name]:
                    bad += 1
                    print("DIFFERENT", f.name, got, record[f.name])
                print(f.name, got, flush=True)
    if mode == "code":
        (folder / "pixels.json").write_text(json.dumps(record, indent=1))
    print(f"{len(record)} files, {bad} different")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], Path(sys.argv[2])))
