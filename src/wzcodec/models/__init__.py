"""Models (one per file) and their registry. Importing a model module registers it."""

from wzcodec.models import (  # noqa: F401  (dsin-atn: dsin.py; avif-si, heic-si: over_codec.py)
    atn,
    atn_paper,
    dsin,
    hyperprior,
    ndic,
    over_codec,
)
from wzcodec.models.registry import MODELS, build

__all__ = ["MODELS", "build"]
