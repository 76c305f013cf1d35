"""Models (one per file) and their registry. Importing a model module registers it; the
receivers over a standard codec are registered from the catalog (base codec, uses y)."""

from functools import partial

from wzcodec import catalog
from wzcodec.models import atn, atn_paper, dsin, hyperprior, ndic  # noqa: F401 (dsin-atn: dsin.py)
from wzcodec.models.registry import MODELS, build, register
from wzcodec.receiver.gated import GatedReceiver

for _e in catalog.CATALOG.values():
    if _e.kind == "receiver":  # avif-si, heic-si, avif-pf, heic-pf
        register(_e.name, partial(GatedReceiver, _e.base, use_side=_e.uses_side))

__all__ = ["MODELS", "build"]
