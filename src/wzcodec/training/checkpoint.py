"""Checkpoints that resume exactly, and a clean stop on SIGINT / SIGTERM.

A checkpoint holds the model, the optimizers, the step, the wall time, every rank's random
states and the config, written atomically (a kill mid-write leaves the previous one). The
random states are restored last, after everything that draws from them at start-up, so a
resumed run draws the batches an uninterrupted one would have drawn.
"""

from __future__ import annotations

import random
import signal
import sys
import threading
from pathlib import Path

import torch

from wzcodec.files import atomic_open

CHECKPOINT = "checkpoint.pt"


def save_checkpoint(
    path: Path, model, opt, aux_opt, step: int, rngs: list[dict], cfg: dict, elapsed: float
) -> None:
    """Model, optimizers, step, wall time and every rank's RNG states, written atomically."""
    state = {
        "model": model.state_dict(),
        "opt": opt.state_dict(),
        "aux_opt": aux_opt.state_dict() if aux_opt is not None else {},
        "step": step,
        "elapsed": elapsed,
        "rng": rngs,
        "config": cfg,
    }
    with atomic_open(path) as f:
        torch.save(state, f)


def load_checkpoint(path: Path, model, opt, aux_opt=None, weights_only: bool = True) -> dict:
    """Load model and optimizer states from ``path``; returns the checkpoint. The groups'
    ``lr_mult`` stay as the config set them (a resumed run may change them)."""
    state = torch.load(path, map_location="cpu", weights_only=weights_only)
    model.load_state_dict(state["model"])
    mults = [g.get("lr_mult") for g in opt.param_groups]
    opt.load_state_dict(state["opt"])
    for g, mult in zip(opt.param_groups, mults, strict=True):
        if mult is not None:
            g["lr_mult"] = mult
    if aux_opt is not None:
        aux_opt.load_state_dict(state["aux_opt"])
    return state


def rng_state(gen: torch.Generator | None = None, rng: random.Random | None = None) -> dict:
    """The torch, ``gen``'s and Python's (``rng``'s, or the global) random states."""
    state = {"torch": torch.get_rng_state()}
    if gen is not None:
        state["gen"] = gen.get_state()
    state["python"] = (random if rng is None else rng).getstate()
    return state


def restore_rng(state: dict, rank: int = 0, gen: torch.Generator | None = None, rng=None) -> None:
    """Undo ``rng_state`` for ``rank`` (a checkpoint holds a list, one per rank)."""
    mine = state[rank] if isinstance(state, list) else state
    torch.set_rng_state(mine["torch"])
    if gen is not None:
        gen.set_state(mine["gen"])
    (random if rng is None else rng).setstate(_tuplify(mine["python"]))


def remove_stale(out_dir: Path) -> None:
    """Temporary files a kill mid-write left behind."""
    for stale in out_dir.glob(f".{CHECKPOINT}.*.tmp"):
        stale.unlink(missing_ok=True)


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, (list, tuple)) else x


class StopOnSignal:
    """Turns SIGINT / SIGTERM into a request the training loop honours after the current step
    (so Ctrl-C or a scheduler's kill leaves a fresh checkpoint); a second signal acts as usual."""

    def __init__(self):
        self.requested = False
        self.old: dict = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, self._handle)

    def _handle(self, sig, frame) -> None:
        if self.requested:  # asked twice: behave as if we were not here
            self.restore()
            signal.raise_signal(sig)
            return
        self.requested = True
        print(
            f"\n{signal.Signals(sig).name}: stopping after this step (checkpoint follows)",
            file=sys.stderr,
        )

    def restore(self) -> None:
        for sig, handler in self.old.items():
            signal.signal(sig, handler)
        self.old = {}
