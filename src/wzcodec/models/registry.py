"""Model registry: name -> class. Every model declares ``default_config`` and takes it as kwargs."""

from __future__ import annotations

from torch import nn

MODELS: dict[str, type[nn.Module]] = {}


def register(name: str):
    def deco(cls):
        cls.model_name = name
        MODELS[name] = cls
        return cls

    return deco


def build(name: str, **config) -> nn.Module:
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    cls = MODELS[name]
    return cls(**{**cls.default_config, **config})
