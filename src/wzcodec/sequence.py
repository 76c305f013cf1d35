"""Wyner–Ziv still-frame coding of a sequence: every frame is coded alone (an encoder as cheap
as one still image: drones, sensor nodes), and the receiver decodes frame t with its own
decodes of the frames before it (and any other camera's frame t) as side images.

    frame t ──► codec.encode (alone, never sees another frame) ──► bits_t
    bits_t ──► codec.decode(bits_t, side=[camera frames t, x̃_(t-1), x̃_(t-2)]) ──► x̃_t ──┐
                                   ▲                                                    │
                                   └──────────── fed forward (``refs`` frames) ─────────┘

Error cannot build up without bound: each frame's base decode depends on its own bits only,
and the receiver adds to it what the side images support (a poor side image is ignored; see
``receiver/gated.py``). ``wz eval-seq`` (``eval/sequence.py``) checks this over whole
sequences: the base decode, the fed-forward decode, and the same receiver given the true
previous frames (an upper bound).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from wzcodec.codec import Codec


def decode_sequence(
    codec: Codec,
    blobs: Iterable[bytes],
    refs: int = 2,
    cameras: Sequence[Sequence] | None = None,
) -> Iterator[np.ndarray]:
    """Decode frames in order, each with the ``refs`` previous decodes as side images (most
    recent first), after the other cameras' frame t if ``cameras`` (one list of images per
    camera, indexed by frame) are given. Yields each frame's HxWx3 uint8 decode."""
    past: deque[np.ndarray] = deque(maxlen=max(0, refs))
    for t, data in enumerate(blobs):
        sides = [cam[t] for cam in cameras or ()] + list(reversed(past))
        img = codec.decode(data, side=sides or None)
        if refs > 0:
            past.append(img)
        yield img
