"""Model registry: name -> what builds it. A model class declares its arguments and their
defaults once, in its constructor's signature; ``build(name, **config)`` passes a config (a
weights file's ``.json``) as keyword arguments. The receivers over a standard codec (``avif-si``,
``heic-si``, ``avif-pf``, ``heic-pf``) are one class, ``receiver.gated.GatedReceiver``, with the
catalog's base codec and ``uses_side`` filled in (``models/__init__.py``)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

MODELS: dict[str, Callable[..., nn.Module]] = {}


def register(name: str, factory: Callable[..., nn.Module] | None = None):
    """``@register(name)`` on a model class, or ``register(name, factory)``."""

    def deco(f):
        MODELS[name] = f
        return f

    return deco(factory) if factory is not None else deco


def build(name: str, **config) -> nn.Module:
    """A fresh model of registry entry ``name``; ``model.model_name`` is ``name``."""
    if name not in MODELS:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}")
    model = MODELS[name](**config)
    model.model_name = name
    return model
