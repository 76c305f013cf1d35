"""Training configs: every key, its default, the checks, and the learning-rate schedule.

A config is a YAML file (``configs/*.yaml``). ``resolve`` fills in every key the file leaves
out from ``DEFAULTS`` (or ``REFINER_DEFAULTS`` for a receiver over a standard codec), so the
training code reads ``cfg[key]`` and the defaults live here alone. ``docs/training.md`` explains
each key.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from wzcodec import catalog
from wzcodec.errors import WzError

# an end-to-end model (hyperprior, ndic, atn, atn-paper, dsin, dsin-atn)
REQUIRED = ("model", "data", "lambdas", "batch", "lr", "steps")
DEFAULTS: dict = {
    "model_config": {},  # the model's arguments
    "init_from": None,  # warm start: a .safetensors of the same model or of the hyperprior
    "crop": 256,  # training crop: an int (square) or [h, w]
    "distortion": "mse",  # or "ms-ssim"
    "alpha": 0.0,  # NDIC's y-decoder distortion weight
    "beta": 0.0,  # NDIC's rate weight of w
    "lr_warmup": 0,  # steps of linear warm-up
    "lr_drop_at": [],  # steps where lr is multiplied by 0.1
    "lr_drop_after_minutes": [],  # the same, after so many minutes of training
    "lr_mult": {},  # {name prefix: lr multiplier}, the longest prefix wins
    "side_lr_mult": 1.0,  # lr multiplier of parameters a warm start did not load
    "freeze": [],  # name prefixes of parameters that do not train
    "freeze_input_channels": {},  # {conv weight: n}: its first n input channels do not train
    "side_curriculum": None,  # {steps, max_shift (0)}: y starts as a shifted copy of x
    "coarse_latent": None,  # {p, max_factor (4)}: D_x also trains on coarser latents
    "match_loss": None,  # {weight (1), max_shift (64)}: supervised matching loss, CAMs
    "aux_lr": 1e-3,  # lr of the entropy bottleneck's quantiles
    "clip": None,  # gradient-norm clip
    "bf16": False,  # bf16 autocast for the transforms (entropy models stay fp32)
    "compile": False,  # torch.compile the GDN transforms
    "device": "cpu",
    "seed": 0,
    "train_protocol": None,  # None: native crops; "paper": whole images resized
    "val_protocol": "native",
    "val_every": 500,
    "log_every": 25,
    "checkpoint_minutes": 5,
    "checkpoint_every_steps": None,
}
DATA_DEFAULTS: dict = {"val": None, "val_count": 4, "val_split": "test"}
# the defaults inside the options that take a mapping (``resolve`` fills them in; ``p`` and
# ``steps`` have none: they must be given)
NESTED_DEFAULTS: dict = {
    "side_curriculum": {"max_shift": 0},
    "coarse_latent": {"max_factor": 4},
    "match_loss": {"weight": 1.0, "max_shift": 64},
}
CONFIG_KEYS = frozenset(REQUIRED) | frozenset(DEFAULTS)
DATA_KEYS = frozenset({"train"}) | frozenset(DATA_DEFAULTS)

# a receiver over a standard codec (avif-si, heic-si, avif-pf, heic-pf): refiner.py, flow.py
REFINER_REQUIRED = ("model", "data", "batch", "lr", "steps")
REFINER_DEFAULTS: dict = {
    "model_config": {},
    "bases": None,  # base codecs to train over; None: the model's own
    "qualities": {},  # {base: [q, ...]}; a base left out: its classical sweep
    "both_directions": True,  # a stereo pair trains as x -> y and y -> x
    "cache": "runs/base-decodes",  # base decodes, shared by runs
    "workers": 1,  # processes coding the base decodes
    "crop": [128, 512],
    "lr_warmup": 0,
    "lr_drop_at": [],
    "lr_drop_after_minutes": [],
    "clip": None,
    "bf16": False,
    "seed": 0,
    "init": None,  # "dsin": R starts as the shipped dsin fusion net; flow: a .safetensors
    "unrelated_p": 0.1,  # probability that a sample's y is another pair's
    "calibrate": None,  # after training, fit the rate gate on this many train pairs
    "serve": {},  # matching settings for coding, set after training: scale, search_v, sigma
    "val_every": 250,
    "log_every": 25,
    "checkpoint_minutes": 5,
    # the flow receiver (model_config align: flow; training/flow.py)
    "aligned_cache": "runs/aligned",  # y aligned onto each base decode, shared by runs
    "aligned_per_pair": 8,  # (base, quality, y kind) draws aligned per pair
    "decoded_y_p": 0.3,  # share of draws whose y is the other image's base decode
    "val_hold": 0,  # hold every n-th real pair out of training (validation, gate); 0: none
}
REFINER_KEYS = frozenset(REFINER_REQUIRED) | frozenset(REFINER_DEFAULTS)
SERVE_KEYS = frozenset({"scale", "search_v", "sigma"})


def numbers(value):
    """YAML 1.1 reads ``1e-4`` (no dot) as a string; turn such strings into floats."""
    if isinstance(value, dict):
        return {k: numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [numbers(v) for v in value]
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_config(path: str | Path) -> dict:
    with open(path) as f:
        return numbers(yaml.safe_load(f))


def is_refiner(cfg: dict) -> bool:
    """A receiver over a standard codec (the catalog says): trained by ``refiner.py`` or
    ``flow.py``, not by the end-to-end models' rate-distortion step."""
    name = cfg.get("model")
    return name in catalog.CATALOG and catalog.CATALOG[name].kind == "receiver"


def check_config(cfg: dict) -> None:
    """A misspelt key would otherwise be ignored in silence (a learning-rate drop that never
    comes): refuse unknown keys, and the required ones missing, before anything runs."""
    refiner = is_refiner(cfg)
    keys, required = (REFINER_KEYS, REFINER_REQUIRED) if refiner else (CONFIG_KEYS, REQUIRED)
    unknown = sorted(set(cfg) - keys)
    if not refiner:
        unknown += sorted(f"data.{k}" for k in set(cfg.get("data") or {}) - DATA_KEYS)
    if unknown:
        kind = " for a refiner" if refiner else ""
        raise WzError(f"unknown config key(s){kind}: {', '.join(unknown)}")
    bad = sorted(set(cfg.get("serve") or {}) - SERVE_KEYS)
    if bad:
        raise WzError(f"serve: only scale, search_v and sigma can change after training: {bad}")
    missing = [k for k in required if k not in cfg]
    if not refiner and "data" in cfg and "train" not in (cfg["data"] or {}):
        missing.append("data.train")
    if missing:
        raise WzError(f"config lacks required key(s): {', '.join(missing)}")


def resolve(cfg: dict) -> dict:
    """``cfg`` with every key it leaves out set to its default, and ``data.train`` a list."""
    defaults = REFINER_DEFAULTS if is_refiner(cfg) else DEFAULTS
    out = {**defaults, **cfg}
    out["data"] = {**DATA_DEFAULTS, **(cfg.get("data") or {})}
    for key, nested in NESTED_DEFAULTS.items():
        if isinstance(out.get(key), dict):
            out[key] = {**nested, **out[key]}
    if isinstance(out["data"].get("train"), str):  # one spec
        out["data"]["train"] = [out["data"]["train"]]
    return out


def learning_rate(cfg: dict, step: int, minutes: float) -> float:
    """``lr`` after ``lr_warmup``, times 0.1 for every ``lr_drop_at`` step and every
    ``lr_drop_after_minutes`` mark passed."""
    lr = cfg["lr"] * min(1.0, (step + 1) / max(1, cfg["lr_warmup"]))
    lr *= 0.1 ** sum(step >= s for s in cfg["lr_drop_at"])
    return lr * 0.1 ** sum(minutes >= m for m in cfg["lr_drop_after_minutes"])
