"""The ``.wz`` container: a small header, length-prefixed entropy-coded strings, and a CRC32.

    offset  size  field
    0       3     magic b"WZC"
    3       1     format version (1)
    4       1     n = length of the model name (1..32), then n bytes of ASCII name
    .       8     weights id: first 8 bytes of SHA-256 of the weights the encoder used
    .       2     quality x 256 (fixed point, so fractional qualities survive)
    .       2     height of the original image (1..16384)
    .       2     width  (1..16384; height x width <= images.MAX_PIXELS)
    .       1     flags (bit 0: the source was grayscale)
    .       1     k = number of strings (1..8), then k times: u32 length + bytes
    end-4   4     CRC32 of everything before it

All integers are big-endian. Every header value is bounds-checked before anything is
allocated; every failure is a ``BitstreamError`` naming its cause.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

from wzcodec.errors import BitstreamError
from wzcodec.images import MAX_PIXELS, MAX_SIDE

MAGIC = b"WZC"
VERSION = 1
MAX_NAME = 32
MAX_STRINGS = 8
FLAG_GRAY = 1


@dataclass
class Header:
    model: str
    weights_id: bytes
    quality: float
    height: int
    width: int
    flags: int = 0

    @property
    def gray(self) -> bool:
        return bool(self.flags & FLAG_GRAY)


@dataclass
class Bitstream:
    header: Header
    strings: list[bytes] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        h = self.header
        name = h.model.encode("ascii")
        if not 1 <= len(name) <= MAX_NAME:
            raise ValueError(f"model name must be 1..{MAX_NAME} ASCII characters")
        if len(h.weights_id) != 8:
            raise ValueError("weights id must be 8 bytes")
        if not 1 <= len(self.strings) <= MAX_STRINGS:
            raise ValueError(f"1..{MAX_STRINGS} strings per bitstream")
        q = round(h.quality * 256)
        out = [
            MAGIC,
            bytes([VERSION, len(name)]),
            name,
            h.weights_id,
            struct.pack(">HHHBB", q, h.height, h.width, h.flags, len(self.strings)),
        ]
        for s in self.strings:
            out += [struct.pack(">I", len(s)), s]
        body = b"".join(out)
        return body + struct.pack(">I", zlib.crc32(body))


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data) - 4:  # the last 4 bytes are the CRC
            raise BitstreamError(f"truncated bitstream: {what} runs past the end of the data")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b


def parse(data: bytes) -> Bitstream:
    """Parse and validate ``data``; raises BitstreamError on any problem.

    A structural failure (a length running past the end, say) on data whose CRC does not match
    says so too, since a flipped length byte and a truncated file look the same."""
    try:
        return _parse(data)
    except BitstreamError as e:
        data = bytes(data) if isinstance(data, (bytes, bytearray, memoryview)) else b""
        if "CRC" not in str(e) and len(data) >= 8 and data[:3] == MAGIC and data[3] == VERSION:
            (crc,) = struct.unpack(">I", data[-4:])
            if zlib.crc32(data[:-4]) != crc:
                raise BitstreamError(f"{e} (CRC mismatch: truncated or corrupted)") from None
        raise


def _parse(data: bytes) -> Bitstream:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError("bitstream must be bytes")
    data = bytes(data)
    if len(data) < 3 or data[:3] != MAGIC:
        raise BitstreamError("not a wzcodec bitstream (bad magic)")
    if len(data) < 4:
        raise BitstreamError("truncated bitstream: no format version")
    if data[3] != VERSION:
        raise BitstreamError(
            f"unsupported format version {data[3]} (this build reads version {VERSION})"
        )
    r = _Reader(data)
    r.pos = 4
    n = r.take(1, "name length")[0]
    if not 1 <= n <= MAX_NAME:
        raise BitstreamError(f"bad header: model name length {n}")
    try:
        name = r.take(n, "model name").decode("ascii")
    except UnicodeDecodeError:
        raise BitstreamError("bad header: model name is not ASCII") from None
    weights_id = r.take(8, "weights id")
    q, h, w, flags, k = struct.unpack(">HHHBB", r.take(8, "header"))
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE and h * w <= MAX_PIXELS):
        raise BitstreamError(f"bad header: image size {w}x{h} out of bounds")
    if q < 256:
        raise BitstreamError(f"bad header: quality {q / 256:g} below 1")
    if not 1 <= k <= MAX_STRINGS:
        raise BitstreamError(f"bad header: {k} strings (1..{MAX_STRINGS} allowed)")
    strings = []
    for i in range(k):
        (length,) = struct.unpack(">I", r.take(4, f"length of string {i}"))
        strings.append(r.take(length, f"string {i} ({length} bytes)"))
    if r.pos != len(data) - 4:
        if r.pos > len(data) - 4:
            raise BitstreamError("truncated bitstream: no CRC")
        raise BitstreamError(f"{len(data) - 4 - r.pos} unexpected bytes after the last string")
    (crc,) = struct.unpack(">I", data[-4:])
    if zlib.crc32(data[:-4]) != crc:
        raise BitstreamError("CRC mismatch: the bitstream is corrupted")
    return Bitstream(Header(name, weights_id, q / 256, h, w, flags), strings)
