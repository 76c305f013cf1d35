"""Errors a user can cause. The CLI prints these as one line and exits with status 2."""


class WzError(Exception):
    """Base class of every error caused by input (files, images, bitstreams, options)."""


class BitstreamError(WzError):
    """A .wz bitstream is malformed, truncated, corrupt, or made for other weights."""


class ImageError(WzError):
    """An input image is missing, unreadable, too large, or does not fit its partner."""
