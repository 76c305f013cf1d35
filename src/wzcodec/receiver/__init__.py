"""The receiver of ``avif-si`` / ``heic-si``: what refines a standard codec's decode x̂ with
the side images the decoder holds. Plain modules, no entropy coder:

    align.py     DIS optical flow x̂ → y, sub-pixel warp, per-pixel confidence (OpenCV)
    fusion.py    FusionUNet: (x̂, y_w, confidence, rate) → residual, last layer at zero
    receiver.py  FlowReceiver: alignment + fusion for one decode, several side images
    match.py     MatchReceiver: the earlier receiver (DSIN's patch matching, or ATN's band
                 cross-attention, and DSIN's fusion net): the ablations and ``*-pf``
    gated.py     GatedReceiver: a receiver and its rate gate α(bpp), one curve per file
                 format: what ``avif-si`` / ``heic-si`` decode with and train

The base coder (``coders/base.py``) decodes the base file and calls ``GatedReceiver.refine``
with the file's rate.
"""

from wzcodec.receiver.align import Aligned, align_many
from wzcodec.receiver.fusion import FusionUNet
from wzcodec.receiver.receiver import FlowReceiver

__all__ = ["Aligned", "FlowReceiver", "FusionUNet", "align_many"]
