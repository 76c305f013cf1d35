"""The .wz container: every malformed input is a BitstreamError naming its cause."""

from __future__ import annotations

import struct
import zlib

import pytest

from wzcodec.bitstream import VERSION, Bitstream, Header, parse
from wzcodec.errors import BitstreamError


def _sample() -> bytes:
    return Bitstream(
        Header("hyperprior", b"\x01" * 8, 2.5, 375, 1242, 0), [b"abc" * 10, b"z"]
    ).to_bytes()


def test_header_round_trips_including_fractional_quality():
    bs = parse(_sample())
    assert (bs.header.model, bs.header.quality, bs.header.height, bs.header.width) == (
        "hyperprior",
        2.5,
        375,
        1242,
    )
    assert bs.strings == [b"abc" * 10, b"z"]


def test_every_truncation_is_reported():
    data = _sample()
    for n in range(len(data)):
        with pytest.raises(BitstreamError):
            parse(data[:n])


def test_truncated_data_names_truncation():
    with pytest.raises(BitstreamError, match="truncated"):
        parse(_sample()[:30])


def test_flipped_payload_bit_fails_the_crc():
    data = bytearray(_sample())
    data[-8] ^= 0x10
    with pytest.raises(BitstreamError, match="CRC"):
        parse(bytes(data))


def test_other_format_version_is_refused_by_name():
    data = bytearray(_sample())
    data[3] = VERSION + 1
    with pytest.raises(BitstreamError, match="format version"):
        parse(bytes(data))


def test_bad_magic_is_refused():
    with pytest.raises(BitstreamError, match="magic"):
        parse(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)


def _with_fields(h: int, w: int, length: int) -> bytes:
    body = b"WZC" + bytes([VERSION, 1]) + b"m" + b"\0" * 8 + struct.pack(">HHHBB", 256, h, w, 0, 1)
    body += struct.pack(">I", length)
    return body + struct.pack(">I", zlib.crc32(body))


def test_huge_dimensions_are_refused_before_allocation():
    with pytest.raises(BitstreamError, match="out of bounds"):
        parse(_with_fields(65535, 65535, 0))


def test_string_length_past_the_end_is_refused():
    with pytest.raises(BitstreamError, match="truncated"):
        parse(_with_fields(16, 16, 2**32 - 1))
