"""The step loop of the receivers' trainers (``refiner.py``, ``flow.py``): learning-rate
schedule, log, validation cadence, time limit, checkpoints and a clean stop on a signal.

    Steps(model, opt, cfg, out_dir, state, rng).run(step_fn, validate_fn, ...)
        while step < total: lr ─► step_fn(lr) ─► loss; every log_every: the log's row (the
        mean gain over the window, and validate_fn() every val_every); every
        checkpoint_minutes: a checkpoint; SIGINT / SIGTERM: stop after this step
    then a last checkpoint (``checkpoint``, again after the caller's calibration)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from wzcodec.training.checkpoint import CHECKPOINT, StopOnSignal, rng_state, save_checkpoint
from wzcodec.training.config import learning_rate
from wzcodec.training.log import Log


class Steps:
    """One run's loop state: ``step``, ``stopped`` (by a signal), the last ``metrics``."""

    def __init__(
        self, model, opt, cfg: dict, out_dir: Path, state: dict | None, rng: random.Random
    ):
        self.model, self.opt, self.cfg, self.out_dir, self.rng = model, opt, cfg, out_dir, rng
        self.step = state["step"] if state else 0
        self.elapsed = state.get("elapsed", 0.0) if state else 0.0
        self.t0 = time.time()
        self.stopped = False
        self.metrics: dict = {}

    def seconds(self) -> float:
        return self.elapsed + time.time() - self.t0

    def checkpoint(self, cfg: dict | None = None) -> None:
        rngs = [rng_state(rng=self.rng)]
        path = self.out_dir / CHECKPOINT
        save_checkpoint(
            path, self.model, self.opt, None, self.step, rngs, cfg or self.cfg, self.seconds()
        )

    def run(
        self,
        step_fn: Callable[[float], float],
        validate_fn: Callable[[], dict] | None,
        total: int,
        max_minutes: float | None,
        progress: bool,
    ) -> None:
        """Steps until ``total`` (or the time limit, or a signal); checkpoints at the end.
        ``step_fn(lr)`` returns the step's loss (dB lost against the base decode)."""
        cfg = self.cfg
        log = Log(self.out_dir, fresh=self.step == 0, step=self.step)
        if validate_fn is not None and self.step == 0:  # where the start stands: row 0
            log.write(0, 0.0, {"loss": 0.0, "bpp": 0.0, "psnr": 0.0, "lr": 0.0, **validate_fn()})
        bar = tqdm(total=total, initial=self.step, disable=not progress, desc=cfg["model"])
        stop = StopOnSignal()
        window: list[float] = []
        last = time.time()
        self.model.train()
        try:
            while self.step < total:
                if max_minutes is not None and time.time() - self.t0 > max_minutes * 60:
                    break
                lr = learning_rate(cfg, self.step, self.seconds() / 60)
                window.append(step_fn(lr))
                self.step += 1
                bar.update(1)
                if self.step % cfg["log_every"] == 0 or self.step == total:
                    gain = -float(np.mean(window))
                    self.metrics = {"loss": -gain, "bpp": 0.0, "psnr": gain, "lr": lr}
                    window.clear()
                    if validate_fn is not None and (
                        self.step % cfg["val_every"] == 0 or self.step == total
                    ):
                        self.metrics.update(validate_fn())
                    log.write(self.step, self.seconds(), self.metrics)
                    bar.set_postfix(gain_db=f"{gain:.3f}")
                if stop.requested:
                    self.stopped = True
                    break
                if time.time() - last > cfg["checkpoint_minutes"] * 60:
                    self.checkpoint()
                    last = time.time()
        finally:
            stop.restore()
            bar.close()
            log.close()
        self.checkpoint()
