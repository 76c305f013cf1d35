"""Errors a user can cause. The CLI prints these as one line and exits with status 2."""


class WzError(Exception):
    """Base class of every error caused by input (files, images, bitstreams, options)."""


class BitstreamError(WzError):
    """A .wz bitstream is malformed, truncated, corrupt, or made for other weights."""


class ImageError(WzError):
    """An input image is missing, unreadable, too large, or does not fit its partner."""


class ConversionWarning(UserWarning):
    """An input was converted with a loss (alpha dropped, 16 bits reduced to 8, frames after
    the first dropped, CMYK converted). The CLI prints it as one line on stderr."""


class RateWarning(UserWarning):
    """A rate target could not be met and the nearest file was written instead (asked for)."""
