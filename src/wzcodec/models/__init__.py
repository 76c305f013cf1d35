"""Models (one per file) and their registry."""

from wzcodec.models import hyperprior  # noqa: F401  (registers the model)
from wzcodec.models.registry import MODELS, build

__all__ = ["MODELS", "build"]
