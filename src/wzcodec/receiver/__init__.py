"""The receiver of ``avif-si`` / ``heic-si``: what refines a standard codec's decode x̂ with
the side images the decoder holds. Plain modules, no entropy coder:

    align.py     DIS optical flow x̂ → y, sub-pixel warp, per-pixel confidence (OpenCV)
    fusion.py    FusionUNet: (x̂, y_w, confidence, rate) → residual, last layer at zero
    receiver.py  FlowReceiver: alignment + fusion for one decode, several side images

The codec shell (``models/over_codec.py``) decodes the base file, calls the receiver with
the file's rate and scales its residual by the rate gate α(bpp).
"""

from wzcodec.receiver.align import Aligned, align_many
from wzcodec.receiver.fusion import FusionUNet
from wzcodec.receiver.receiver import FlowReceiver

__all__ = ["Aligned", "FlowReceiver", "FusionUNet", "align_many"]
