"""The protocol of an end-to-end model, declared once: what the codec shell (``coders/latent.py``)
and the trainer read from every model, beyond ``forward`` / ``compress`` / ``decompress``: the
input-size factor, one fixed input size or none, the rate points, how many side images it
uses, the bf16 switch, its cross-attention modules (if any), the entropy coders' tables, and
a bound on the symbols of one entropy-coded string (the decoder's safety tail)."""

from __future__ import annotations

import functools
import inspect
from typing import Any, ClassVar

from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.models import CompressionModel
from compressai.models.utils import update_registered_buffers
from torch import Tensor, nn

from wzcodec.models.latent import SCALE_TABLE

# Buffers that ``update`` builds from the weights (a GaussianConditional adds ``scale_table``)
ENTROPY_TABLES = ("_quantized_cdf", "_offset", "_cdf_length")


class CodecModel(CompressionModel):
    factor = 64  # input sides must be multiples of this (the codec pads)
    fixed_size: tuple[int, int] | None = None  # the one input size it codes (atn-paper)
    levels: int = 6  # quality levels 1..levels (one rate point each)
    # how many side images ``decompress`` takes at once: 1 (the others are ignored), or None
    # for any number, which it then gets as a list of ``prepare_side`` results
    max_sides: ClassVar[int | None] = 1
    uses_side: ClassVar[bool] = True  # False: the decoder ignores any side image
    bf16: bool = False  # bf16 autocast of the transforms (the entropy models stay fp32)
    cams: nn.ModuleList | None  # cross-attention modules (atn), or None (set in ``__init__``)
    config: dict  # the constructor's arguments (``__init_subclass__``): the weights' .json

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cams = None  # not a class attribute: nn.Module keeps submodules in _modules

    def __init_subclass__(cls, **kwargs):
        """Record every model's constructor arguments once, here: ``self.config`` is what
        rebuilds the model from its weights' ``.json``. A subclass's arguments join those its
        parent recorded (``atn`` over ``ndic``); ``**kwargs`` arguments are flattened in and
        tuples stored as lists (JSON)."""
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:
            return
        init = cls.__init__
        sig = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args, **kw):
            init(self, *args, **kw)
            bound = sig.bind(self, *args, **kw)
            bound.apply_defaults()
            own: dict = {}
            for name, value in list(bound.arguments.items())[1:]:
                if sig.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                    own.update(value)
                else:
                    own[name] = list(value) if isinstance(value, tuple) else value
            self.config = {**getattr(self, "config", {}), **own}

        cls.__init__ = recording_init

    def update(self, scale_table=None, force: bool = False, **kwargs) -> bool:
        """Build the entropy coders' CDF tables (with the finer ``SCALE_TABLE``)."""
        table = SCALE_TABLE if scale_table is None else scale_table
        return super().update(scale_table=table, force=force, **kwargs)

    def load_state_dict(self, state_dict, strict: bool = True):
        """CompressAI resizes the entropy models' tables only while they are empty; resize them
        whenever the loaded ones differ (their length depends on the weights they were built
        from, e.g. resuming a run after its ``init_from`` weights changed)."""
        for name, module in self.named_modules():
            if isinstance(module, (EntropyBottleneck, GaussianConditional)):
                names = list(ENTROPY_TABLES) + (
                    ["scale_table"] if isinstance(module, GaussianConditional) else []
                )
                if all(f"{name}.{n}" in state_dict for n in names):
                    update_registered_buffers(module, name, names, state_dict, policy="resize")
        return super().load_state_dict(state_dict, strict=strict)

    def prepare_side(self, y: Tensor) -> Any:
        """What ``decompress`` needs from the (padded) side image y, for several decodes
        against the same y (``Codec.prepare_side``); ``decompress`` accepts it as ``side``.
        Default: y itself."""
        return y

    def max_symbols(self, h: int, w: int) -> int:
        """Symbols in the largest entropy-coded string of an h x w (padded) image."""
        return self.latent.max_symbols(h, w)
