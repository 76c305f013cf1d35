"""What the codec shell needs from every model, beyond ``forward`` / ``compress`` /
``decompress``: the input-size factor, the entropy coders' tables, and a bound on the symbols
of one entropy-coded string (the decoder's safety tail, see ``codec.py``)."""

from __future__ import annotations

from compressai.models import CompressionModel

from wzcodec.models.latent import SCALE_TABLE


class CodecModel(CompressionModel):
    factor = 64  # input sides must be multiples of this (the codec pads)

    def update(self, scale_table=None, force: bool = False, **kwargs) -> bool:
        """Build the entropy coders' CDF tables (with the finer ``SCALE_TABLE``)."""
        table = SCALE_TABLE if scale_table is None else scale_table
        return super().update(scale_table=table, force=force, **kwargs)

    def max_symbols(self, h: int, w: int) -> int:
        """Symbols in the largest entropy-coded string of an h x w (padded) image."""
        return self.latent.max_symbols(h, w)
