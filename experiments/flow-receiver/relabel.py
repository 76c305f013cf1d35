"""Relabel the earlier patch-matching receiver's rows in an eval run before the flow receiver's
are merged in under the shipped names: ``avif-si`` -> ``avif-si-match`` (same for heic; a
rig run's ``avif-si[y1]`` -> ``avif-si-match[y1]``), and drop the rows of a superseded
snapshot (``*-flow``). Rows are otherwise kept as measured.

    python experiments/flow-receiver/relabel.py results/stereo-test-native
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

RENAME = {"avif-si": "avif-si-match", "heic-si": "heic-si-match"}
DROP = {"avif-si-flow", "heic-si-flow"}


def main(run: str) -> None:
    path = Path(run) / "per_image.csv"
    with path.open() as f:
        reader = csv.DictReader(f)
        fields, rows = reader.fieldnames, list(reader)
    rows = [r for r in rows if r["model"] not in DROP]
    for r in rows:
        name, bracket, sides = r["model"].partition("[")
        r["model"] = RENAME.get(name, name) + bracket + sides
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)
    print(f"{path}: {len(rows)} rows; relabelled {', '.join(RENAME)}; dropped {', '.join(DROP)}")


if __name__ == "__main__":
    main(sys.argv[1])
