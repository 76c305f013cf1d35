"""The one training loop skeleton every trainer plugs into (``loop.py``: the end-to-end
models; ``refiner.py``, ``flow.py``: the receivers): learning-rate schedule, log, validation
cadence, time limit, checkpoints with every random state (exact resume), a clean stop on a
signal, and DDP agreement when several processes train.

    Steps(model, opt, cfg, out_dir, state, gen=..., rng=...).run(step, metrics, validate, ...)
        while step < total: lr ─► step(i, lr); every log_every: metrics(lr) ─► the log's row
        (and validate() every val_every); every checkpoint_minutes (or checkpoint_every_steps):
        a checkpoint; SIGINT / SIGTERM: stop after this step
    then a last checkpoint (``checkpoint``, again after a receiver's gate fit)
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from wzcodec.training.checkpoint import CHECKPOINT, StopOnSignal, rng_state, save_checkpoint
from wzcodec.training.config import learning_rate
from wzcodec.training.distributed import Dist
from wzcodec.training.log import Log


class GainWindow:
    """A receiver's log columns: the mean of the step losses since the last row (dB lost
    against the base decode); ``psnr`` is the gain."""

    def __init__(self):
        self.losses: list[float] = []

    def add(self, loss: float) -> None:
        self.losses.append(loss)

    def __call__(self, lr: float) -> dict:
        gain = -float(np.mean(self.losses))
        self.losses.clear()
        return {"loss": -gain, "bpp": 0.0, "psnr": gain, "lr": lr}


class Steps:
    """One run's loop state: ``step``, ``stopped`` (by a signal), the last ``metrics``.
    ``gen`` / ``rng``: the run's torch generator and Python ``random.Random`` (None: the
    global one), saved in every checkpoint; ``aux_opt``: a second optimizer to checkpoint."""

    def __init__(
        self,
        model,
        opt,
        cfg: dict,
        out_dir: Path,
        state: dict | None,
        gen: torch.Generator | None = None,
        rng: random.Random | None = None,
        aux_opt=None,
        dist: Dist | None = None,
    ):
        self.model, self.opt, self.aux_opt, self.cfg = model, opt, aux_opt, cfg
        self.out_dir, self.gen, self.rng = Path(out_dir), gen, rng
        self.dist = dist or Dist()
        self.step = state["step"] if state else 0
        self.elapsed = state.get("elapsed", 0.0) if state else 0.0
        self.t0 = time.time()
        self.stopped = False
        self.metrics: dict = {}

    def seconds(self) -> float:
        return self.elapsed + time.time() - self.t0

    def checkpoint(self, cfg: dict | None = None) -> None:
        """Write the checkpoint (rank 0; every rank's random streams)."""
        rngs = self.dist.gather(rng_state(gen=self.gen, rng=self.rng))
        if self.dist.main:
            save_checkpoint(
                self.out_dir / CHECKPOINT, self.model, self.opt, self.aux_opt, self.step, rngs,
                cfg or self.cfg, self.seconds(),
            )  # fmt: skip

    def _due(self, last: float) -> bool:
        every = self.cfg.get("checkpoint_every_steps")
        late = time.time() - last > self.cfg["checkpoint_minutes"] * 60
        return bool(every and self.step % every == 0) or late

    def run(
        self,
        step_fn: Callable[[int, float], None],
        metrics_fn: Callable[[float], dict],
        validate_fn: Callable[[], dict] | None,
        total: int,
        max_minutes: float | None,
        progress: bool,
        validate_at_start: bool = False,
    ) -> None:
        """Steps until ``total`` (or the time limit, or a signal); checkpoints at the end.
        ``step_fn(step, lr)`` trains one step; ``metrics_fn(lr)`` gives a log row's columns;
        ``validate_at_start``: log the untrained model's validation as row 0."""
        cfg, main = self.cfg, self.dist.main
        log = Log(self.out_dir, fresh=self.step == 0, step=self.step) if main else None
        if log is not None and validate_fn is not None and validate_at_start and self.step == 0:
            log.write(0, 0.0, {"loss": 0.0, "bpp": 0.0, "psnr": 0.0, "lr": 0.0, **validate_fn()})
        quiet = not (progress and main)
        bar = tqdm(total=total, initial=self.step, disable=quiet, desc=cfg["model"])
        stop, last = StopOnSignal(), time.time()
        self.model.train()
        try:
            while self.step < total:
                if max_minutes is not None and time.time() - self.t0 > max_minutes * 60:
                    break
                lr = learning_rate(cfg, self.step, self.seconds() / 60)
                step_fn(self.step, lr)
                self.step += 1
                bar.update(1)
                if self.step % cfg["log_every"] == 0 or self.step == total:
                    self._log(log, bar, metrics_fn(lr), validate_fn, total)
                due, stop.requested = self.dist.any(self._due(last), stop.requested)
                if stop.requested:
                    self.stopped = True
                    break
                if due:
                    self.checkpoint()
                    last = time.time()
        finally:
            stop.restore()
            bar.close()
            if log is not None:
                log.close()
        self.checkpoint()

    def _log(self, log: Log | None, bar, metrics: dict, validate_fn, total: int) -> None:
        due = self.step % self.cfg["val_every"] == 0 or self.step == total
        if validate_fn is not None and due:
            metrics.update(validate_fn())
        self.metrics = metrics
        if log is not None:
            log.write(self.step, self.seconds(), metrics)
        bar.set_postfix({k: f"{metrics[k]:.3f}" for k in ("loss", "bpp", "psnr")})
