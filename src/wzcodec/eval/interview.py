"""The ceiling a decoder-only receiver works under: an encoder that sees y.

When one encoder holds both views (a rig that can feed both cameras to one chip), it can code
x as an HEVC P-frame predicted from y. ``hevc-p`` measures that: x265 (through PyAV) codes the
two-frame sequence [y, x] at a constant QP, and x's bits are the second packet alone (the
first carries y and the parameter sets). ``hevc-i`` is the same encoder with every frame
intra, the like-for-like reference. Neither is a wzcodec file format: these are benchmark
methods of ``wz eval`` (their "quality" is the QP, lower is better).

    [y, x] ──► libx265 (preset slower, qp=Q, bframes=0, ref=1, merange=256) ──► packets
    x's packet size ──► bpp;  decode both packets ──► x̂ (frame 2)
"""

from __future__ import annotations

import io

import numpy as np

METHODS = ("hevc-p", "hevc-i")
QPS = [22, 27, 32, 37, 42, 47, 51]


def _even(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    return np.pad(img, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def code_pair(x: np.ndarray, y: np.ndarray, qp: int, inter: bool = True) -> tuple[int, np.ndarray]:
    """(bytes of x's frame, x̂) for HxWx3 uint8 x and y coded as [y, x] by x265 at ``qp``:
    x as a P-frame from y (``inter``) or intra."""
    import av

    h, w = x.shape[:2]
    frames = [_even(y), _even(x)]
    out = av.open(io.BytesIO(), "w", format="hevc")
    st = out.add_stream("libx265", rate=1)
    st.width, st.height, st.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
    params = f"qp={qp}:bframes=0:scenecut=0:merange=256:ref=1:log-level=none"
    st.options = {"preset": "slower", "x265-params": params + (":keyint=1" if not inter else "")}
    packets = []
    for f in frames:
        packets += [bytes(p) for p in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24"))]
    packets += [bytes(p) for p in st.encode()]
    out.close()
    if len(packets) != 2:
        raise RuntimeError(f"x265 gave {len(packets)} packets for 2 frames")
    dec = av.CodecContext.create("hevc", "r")
    pictures = []
    for p in packets:
        pictures += dec.decode(av.Packet(p))
    pictures += dec.decode(None)
    x_hat = pictures[1].to_ndarray(format="rgb24")[:h, :w]
    return len(packets[1]), np.ascontiguousarray(x_hat)
