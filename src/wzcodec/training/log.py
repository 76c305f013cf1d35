"""The training log: log.csv, and TensorBoard event files when tensorboard is installed."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from wzcodec.files import atomic_open


class Log:
    """log.csv (step, time, loss, bpp, psnr, lr, then validation columns as JSON) and, when the
    tensorboard package is installed, TensorBoard event files in the same folder."""

    def __init__(self, out_dir: Path, fresh: bool, step: int = 0):
        path = out_dir / "log.csv"
        new = fresh or not path.exists()
        if not new:  # resuming: forget rows logged after the checkpoint (they will be redone)
            with open(path, newline="") as f:
                rows = list(csv.reader(f))
            keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
            buf = io.StringIO()
            csv.writer(buf).writerows(keep)
            with atomic_open(path) as f:
                f.write(buf.getvalue().encode())
        self.f = open(path, "w" if new else "a", newline="")  # noqa: SIM115 (closed in close())
        self.csv = csv.writer(self.f)
        if new:
            self.csv.writerow(["step", "time", "loss", "bpp", "psnr", "lr", "val"])
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out_dir / "tb"))
        except ImportError:
            self.tb = None

    def write(self, step: int, seconds: float, metrics: dict) -> None:
        val = {k: v for k, v in metrics.items() if k.startswith("val_") or k == "match_loss"}
        m = metrics
        row = [step, f"{seconds:.1f}", f"{m['loss']:.5f}", f"{m['bpp']:.4f}", f"{m['psnr']:.3f}"]
        self.csv.writerow([*row, f"{m['lr']:.2e}", json.dumps(val)])
        self.f.flush()
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.add_scalar(k if k.startswith("val_") else f"train/{k}", v, step)
            self.tb.flush()

    def close(self) -> None:
        self.f.close()
        if self.tb is not None:
            self.tb.close()
