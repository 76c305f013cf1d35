"""Where pairs come from: lists of (x, y) image paths, and a dataset over them.

    index file / folder ──► list[Pair] ──► PairDataset ──► (x, y) tensors in [0, 1], 3xHxW
                                          (preloaded,      (protocol or training transform)
                                           decoded once)

Sources
-------
``stereo_folder``   <root>/<source>/{left,right}/<id>.png indexed by <root>/splits.csv
``rig``             the same folder as a camera rig over time: x = left(t), y = right(t), further
                    sides left(t-1), right(t-1) (ids <name>_<frame number>, in number order)
``pairs``           two folders of the user's: LEFT_DIR,RIGHT_DIR, files paired by name
``frame_pairs``     a CSV with columns x, y, split (paths relative to the CSV's folder)
``photos``          single images (y is None): a CSV with columns path, split
``kitti_stereo``    KITTI Stereo 2012 + 2015 with the DSIN/NDIC/ATN split lists (shipped)
``kitti_general``   KITTI raw drives: x from one colour camera, y from the other, 1..3 frames apart
``cityscapes``      leftImg8bit / rightImg8bit

A *spec* string names a source for configs and the CLI: ``stereo:PATH``, ``frames:CSV``,
``rig:PATH``, ``pairs:LEFT_DIR,RIGHT_DIR``, ``photos:CSV``, ``kitti-stereo:ROOT``,
``kitti-general:ROOT``, ``cityscapes:ROOT``.
"""

from __future__ import annotations

import csv
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from wzcodec.files import IMAGE_SUFFIXES
from wzcodec.images import read_rgb, to_tensor

SPLITS_DIR = Path(__file__).parent / "splits"


@dataclass(frozen=True)
class Pair:
    """One sample: x is coded, y is the decoder's side information (None for single photos)."""

    x: Path
    y: Path | None
    source: str
    split: str
    name: str
    extra: tuple[Path, ...] = ()  # further side images (a rig's other views, past frames)

    @property
    def sides(self) -> tuple[Path, ...]:
        """Every side image: y, then ``extra``."""
        return ((self.y,) if self.y is not None else ()) + self.extra


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def stereo_folder(root: str | Path, split: str | None = None) -> list[Pair]:
    """Pairs of the ``<root>/<source>/{left,right}/<id>.<ext>`` layout indexed by splits.csv."""
    root = Path(root)
    rows = _read_csv(root / "splits.csv")
    return [
        Pair(
            root / r["left"], root / r["right"], r["source"], r["split"], f"{r['source']}/{r['id']}"
        )
        for r in rows
        if split is None or r["split"] == split
    ]


def rig(root: str | Path, split: str | None = None) -> list[Pair]:
    """A stereo folder as a rig over time: x = left(t) with y = right(t) and the further sides
    left(t-1), right(t-1). Frames are the ids ``<name>_<number>`` of one source, taken in
    number order (KITTI odometry's 10 Hz frames, EuRoC's timestamps); each frame but the
    first of its sequence makes a pair."""
    seqs: dict[tuple[str, str], list[tuple[int, Pair]]] = {}
    for p in stereo_folder(root, split):
        stem, _, num = p.name.rpartition("_")
        if stem and num.isdigit():
            seqs.setdefault((p.source, stem), []).append((int(num), p))
    out = []
    for frames in seqs.values():
        frames.sort(key=lambda f: f[0])
        for (_, prev), (_, cur) in itertools.pairwise(frames):
            out.append(Pair(cur.x, cur.y, cur.source, cur.split, cur.name, extra=(prev.x, prev.y)))
    return sorted(out, key=lambda p: p.name)


def folder_pairs(dirs: str, split: str | None = None) -> list[Pair]:
    """``LEFT_DIR,RIGHT_DIR``: a user's own two folders, each image of the first paired with
    the image of the same name (any image suffix) in the second; no ``splits.csv`` needed
    (every pair is in every split). A name without a partner is an error."""
    left_s, sep, right_s = dirs.partition(",")
    if not sep or not left_s or not right_s:
        raise ValueError(f"pairs:{dirs}: give two folders, pairs:LEFT_DIR,RIGHT_DIR")
    left, right = Path(left_s), Path(right_s)
    for d in (left, right):
        if not d.is_dir():
            raise ValueError(f"pairs: {d} is not a folder")

    def images(d: Path) -> dict[str, Path]:
        return {f.stem: f for f in sorted(d.iterdir()) if f.suffix.lower() in IMAGE_SUFFIXES}

    xs, ys = images(left), images(right)
    lonely = sorted(set(xs) ^ set(ys))
    if lonely:
        where = [f"{n} (only in {left if n in xs else right})" for n in lonely[:3]]
        more = f" and {len(lonely) - 3} more" if len(lonely) > 3 else ""
        raise ValueError(f"pairs: no partner for {', '.join(where)}{more}")
    return [Pair(xs[n], ys[n], left.name, split or "all", n) for n in sorted(xs)]


def frame_pairs(csv_path: str | Path, split: str | None = None) -> list[Pair]:
    """Temporal / multi-view pairs from a CSV with columns ``x, y, split[, source]``."""
    csv_path = Path(csv_path)
    base = csv_path.parent
    return [
        Pair(base / r["x"], base / r["y"], r.get("source", base.name), r["split"], r["x"])
        for r in _read_csv(csv_path)
        if split is None or r["split"] == split
    ]


def photos(csv_path: str | Path, split: str | None = None) -> list[Pair]:
    """Single photos (``path, split[, source]`` columns); y is None."""
    csv_path = Path(csv_path)
    base = csv_path.parent
    return [
        Pair(base / r["path"], None, r.get("source", base.name), r["split"], r["path"])
        for r in _read_csv(csv_path)
        if split is None or r["split"] == split
    ]


def kitti_stereo(root: str | Path, split: str | None = "train") -> list[Pair]:
    """KITTI Stereo 2012 + 2015 with the DSIN split lists shipped in ``data/splits``.

    ``root`` holds the unpacked archives ``data_stereo_flow/`` (2012) and ``data_scene_flow/``
    (2015). The list files hold one path per line, x then y alternating (DSIN's format).
    """
    if split is None:
        return [p for s in ("train", "val", "test") for p in kitti_stereo(root, s)]
    if split not in ("train", "val", "test"):
        raise ValueError(f"KITTI Stereo split must be train, val or test, not {split!r}")
    return _from_list(Path(root), SPLITS_DIR / f"kitti_stereo_{split}.txt", "kitti_stereo", split)


def _from_list(root: Path, list_file: Path, source: str, split: str) -> list[Pair]:
    lines = [ln.strip() for ln in list_file.read_text().splitlines() if ln.strip()]
    if len(lines) % 2:
        raise ValueError(f"{list_file}: odd number of lines (x and y must alternate)")
    return [
        Pair(root / x, root / y, source, split, x)
        for x, y in zip(lines[::2], lines[1::2], strict=True)
    ]


def kitti_general(
    root: str | Path,
    split: str | None = None,
    drives: Sequence[str] | None = None,
    max_gap: int = 3,
) -> list[Pair]:
    """KITTI General: x from ``image_02``, y from ``image_03`` of the same drive 1..max_gap frames
    apart (the unsynchronised "other camera, nearby frame" case).

    ``root`` is a KITTI raw folder (``<date>/<drive>_sync/image_0{2,3}/data/*.png``). The gap of
    frame t is ``1 + t % max_gap``, so every gap is used and the list is deterministic. The papers'
    exact list is not public; this reproduces its protocol, not its file list.
    """
    root = Path(root)
    out: list[Pair] = []
    for drive in sorted(root.glob("*/*_sync")):
        if drives is not None and drive.name not in drives:
            continue
        left = sorted((drive / "image_02" / "data").glob("*.png"))
        right = drive / "image_03" / "data"
        for t, x in enumerate(left):
            gap = 1 + t % max_gap
            y = right / f"{int(x.stem) + gap:0{len(x.stem)}d}.png"
            if y.exists():
                out.append(Pair(x, y, "kitti_general", split or "all", f"{drive.name}/{x.stem}"))
    return out


def cityscapes(root: str | Path, split: str | None = "train") -> list[Pair]:
    """Cityscapes stereo: ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and its right view."""
    root = Path(root)
    out = []
    for x in sorted((root / "leftImg8bit").glob(f"{split or '*'}/*/*_leftImg8bit.png")):
        rel = x.relative_to(root / "leftImg8bit")
        y = root / "rightImg8bit" / rel.parent / x.name.replace("_leftImg8bit", "_rightImg8bit")
        out.append(Pair(x, y, "cityscapes", rel.parts[0], str(rel)))
    return out


_SPECS: dict[str, Callable[..., list[Pair]]] = {
    "stereo": stereo_folder,
    "rig": rig,
    "pairs": folder_pairs,
    "frames": frame_pairs,
    "photos": photos,
    "kitti-stereo": kitti_stereo,
    "kitti-general": kitti_general,
    "cityscapes": cityscapes,
}


def from_spec(spec: str, split: str | None = None) -> list[Pair]:
    """Resolve ``kind:PATH`` (see the module docstring) into pairs of the given split."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in _SPECS:
        raise ValueError(
            f"unknown data spec {spec!r}; use one of {', '.join(k + ':PATH' for k in _SPECS)}"
        )
    return _SPECS[kind](path, split=split)


class PairDataset(Dataset):
    """(x, y) float tensors in [0, 1] of shape 3xHxW; y is x itself for single photos unless a
    ``transform`` makes a pseudo side image.

    Images are decoded once and kept in RAM as uint8 (``preload=True``): a PNG decode costs
    ~12 ms, more than a training step's data budget. ``transform(x, y, pair, rng)`` receives
    uint8 HxWx3 arrays and returns tensors.
    """

    def __init__(
        self,
        pairs: Sequence[Pair],
        transform: Callable[[np.ndarray, np.ndarray | None, Pair, random.Random], tuple]
        | None = None,
        preload: bool = True,
        seed: int = 0,
    ):
        self.pairs = list(pairs)
        self.transform = transform
        self.seed = seed
        self._cache: dict[Path, np.ndarray] = {}
        if preload:
            for p in self.pairs:
                for path in (p.x, p.y):
                    if path is not None and path not in self._cache:
                        self._cache[path] = read_rgb(path)

    def __len__(self) -> int:
        return len(self.pairs)

    def _load(self, path: Path) -> np.ndarray:
        img = self._cache.get(path)
        return img if img is not None else read_rgb(path)

    def sample(self, i: int, rng: random.Random):
        """Item ``i`` with the transform's randomness drawn from ``rng``."""
        p = self.pairs[i]
        x = self._load(p.x)
        y = self._load(p.y) if p.y is not None else None
        if self.transform is not None:
            return self.transform(x, y, p, rng)
        return to_tensor(x), to_tensor(y if y is not None else x)

    def __getitem__(self, i: int):
        return self.sample(i, random.Random(torch.randint(0, 2**31 - 1, (1,)).item()))
