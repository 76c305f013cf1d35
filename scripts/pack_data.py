"""Pack the training splits of ../shared/data into a small, self-contained copy.

Used to ship training data to a remote GPU machine whose upload is capped (64 MiB here):
every image of the chosen splits is re-encoded as JPEG (4:4:4, quality ``--quality``; gray
images stay one channel), and the three index files are rewritten to point at the copies.
The copy keeps the layouts ``wzcodec.data`` reads (``stereo:``, ``frames:``, ``photos:``), so a
config only changes its paths. JPEG at q95 adds noise far below what the models code at 1 bpp,
but it is a lossy copy: evaluate on the original PNGs, never on this.

    python scripts/pack_data.py ../shared/data gpu/data --quality 95 --val-count 6
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from PIL import Image


def _jpeg(src: Path, dst: Path, quality: int) -> str:
    dst = dst.with_suffix(".jpg")
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        im = Image.open(src)
        im = im.convert("L" if im.mode in ("L", "I;16", "I", "LA") else "RGB")
        im.save(dst, quality=quality, subsampling=0)
    return dst.name


def _pack(src_csv: Path, dst_csv: Path, cols: list[str], keep, quality: int) -> int:
    with open(src_csv, newline="") as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, [r for r in reader if keep(r)]
    for r in rows:
        for c in cols:
            rel = Path(r[c])
            r[c] = str(rel.with_name(_jpeg(src_csv.parent / rel, dst_csv.parent / rel, quality)))
    dst_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(dst_csv, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="../shared/data")
    ap.add_argument("dst", type=Path)
    ap.add_argument("--quality", type=int, default=95)
    ap.add_argument("--val-count", type=int, default=6, help="stereo test pairs kept for val")
    a = ap.parse_args()

    with open(a.src / "stereo/splits.csv", newline="") as f:
        test = [r["source"] + "/" + r["id"] for r in csv.DictReader(f) if r["split"] == "test"]
    val = set(test[:: max(1, len(test) // a.val_count)][: a.val_count])
    n = _pack(
        a.src / "stereo/splits.csv",
        a.dst / "stereo/splits.csv",
        ["left", "right"],
        lambda r: r["split"] == "train" or r["source"] + "/" + r["id"] in val,
        a.quality,
    )
    print(f"stereo: {n} pairs")
    train = lambda r: r["split"] == "train"  # noqa: E731
    n = _pack(
        a.src / "sequences/pairs.csv", a.dst / "sequences/pairs.csv", ["x", "y"], train, a.quality
    )
    print(f"sequences: {n} pairs")
    n = _pack(a.src / "photos/photos.csv", a.dst / "photos/photos.csv", ["path"], train, a.quality)
    print(f"photos: {n} images")


if __name__ == "__main__":
    main()
