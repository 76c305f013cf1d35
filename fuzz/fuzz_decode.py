"""Fuzz the decoder: mutate valid .wz files and check every input ends in an image or a
``BitstreamError`` (never another exception, a crash or a hang).

    python fuzz/fuzz_decode.py --seconds 60 [--models hyperprior,atn] [--seed 0]

Mutations: bit flips anywhere, truncation, extension, random header fields (huge sizes
included), random / empty / flipped entropy-coded strings behind a *recomputed* CRC (so the
entropy decoder itself is exercised). Models without shipped weights are fuzzed with random
initial weights: the parsing and entropy-decoding paths are the same.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import time
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def codecs(names: list[str]):
    import torch

    import wzcodec
    from wzcodec.codec import Codec
    from wzcodec.models import build

    out = []
    for name in names:
        if name in wzcodec.available():
            out.append(wzcodec.load(name, quality=2))
        else:
            torch.manual_seed(0)
            out.append(Codec.from_model(build(name), quality=2))
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    from wzcodec.bitstream import Bitstream, parse

    op = rng.randrange(6)
    b = bytearray(data)
    if op == 0:  # raw bit flips (the CRC usually catches them)
        for _ in range(rng.randint(1, 16)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    if op == 1:
        return bytes(b[: rng.randrange(len(b))])
    if op == 2:
        return bytes(b + rng.randbytes(rng.randint(1, 512)))
    bs = parse(data)
    if op == 3:  # header fields, with a valid CRC
        h = bs.header
        h.height = rng.choice([1, 2, 63, 64, 65, h.height, 700, 16385, 65535])
        h.width = rng.choice([1, 3, 64, h.width, 700, 16385, 65535])
        h.quality = rng.choice([1.0, 6.0, h.quality, rng.uniform(0, 300)])
        h.flags = rng.randrange(256)
        try:
            return bs.to_bytes()
        except (ValueError, struct.error):
            return bytes(b)
    strings = [bytearray(s) for s in bs.strings]
    k = rng.randrange(len(strings))
    if op == 4:
        strings[k] = bytearray(rng.randbytes(rng.choice([0, 1, 7, 8, 64, 4096])))
    else:
        s = strings[k]
        for _ in range(rng.randint(1, 8)):
            if s:
                i = rng.randrange(len(s))
                s[i] ^= 1 << rng.randrange(8)
    return Bitstream(bs.header, [bytes(s) for s in strings]).to_bytes()


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--models", default="hyperprior")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-decode-s", type=float, default=10.0)
    a = p.parse_args(argv)

    import wzcodec

    rng = random.Random(a.seed)
    from skimage import data as skdata

    x = np.ascontiguousarray(np.asarray(skdata.stereo_motorcycle()[0])[100:180, 200:312])
    pool = []
    for c in codecs(a.models.split(",")):
        if getattr(c.model, "fixed_size", None):
            img = np.ascontiguousarray(np.asarray(skdata.stereo_motorcycle()[0])[:128, :256])
        else:
            img = x
        pool.append((c, c.encode(img), img))
    counts = {"image": 0, "BitstreamError": 0, "ImageError": 0}
    worst = 0.0
    n = 0
    t0 = time.time()
    while time.time() - t0 < a.seconds:
        codec, data, img = pool[n % len(pool)]
        bad = mutate(data, rng)
        side = img if rng.random() < 0.5 else None
        t = time.time()
        try:
            out = codec.decode(bad, side=side)
            assert out.dtype == np.uint8 and out.ndim == 3
            counts["image"] += 1
        except wzcodec.BitstreamError:
            counts["BitstreamError"] += 1
        except wzcodec.ImageError:  # a mutated header size no longer matches the side image
            counts["ImageError"] += 1
        dt = time.time() - t
        worst = max(worst, dt)
        if dt > a.max_decode_s:
            print(f"hang: {dt:.1f}s on input {n}", file=sys.stderr)
            return 1
        n += 1
    print(f"executions={n} outcomes={counts} worst_decode_s={worst:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
