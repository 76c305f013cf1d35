"""Models (one per file) and their registry. Importing a model module registers it."""

from wzcodec.models import atn, atn_paper, dsin, hyperprior, ndic  # noqa: F401  (dsin-atn: dsin.py)
from wzcodec.models.registry import MODELS, build

__all__ = ["MODELS", "build"]
