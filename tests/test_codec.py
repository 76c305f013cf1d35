"""The codec API: real bitstreams that decode to what the model reconstructs."""

from __future__ import annotations

import numpy as np
import pytest

import wzcodec
from wzcodec.bitstream import parse
from wzcodec.catalog import CATALOG


def test_decode_of_encode_equals_eval_mode_reconstruction(codec, motorcycle):
    x, _ = motorcycle
    data = codec.encode(x)
    decoded = codec.decode(data)
    reconstructed, _ = codec.reconstruct(x)
    assert decoded.shape == x.shape and decoded.dtype == np.uint8
    diff = np.abs(decoded.astype(int) - reconstructed.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


@pytest.mark.parametrize("quality", [1, 6])
def test_bf16_decoder_keeps_the_bytes_and_stays_within_0_05_db_of_fp32(codec, motorcycle, quality):
    from wzcodec.metrics import psnr

    x, _ = motorcycle
    fp32 = wzcodec.load(codec.name, bf16=False)
    bf16 = wzcodec.load(codec.name, bf16=True)
    data = fp32.encode(x, quality=quality)
    assert bf16.encode(x, quality=quality) == data  # the encoder never runs in bf16
    a, b = psnr(x, fp32.decode(data)), psnr(x, bf16.decode(data))
    assert abs(a - b) < 0.05, (a, b)


@pytest.mark.parametrize("quality", [1, 3, 6])
def test_file_bpp_within_two_percent_of_likelihood_estimate(codec, motorcycle, quality):
    x, _ = motorcycle
    data = codec.encode(x, quality=quality)
    _, estimated = codec.reconstruct(x, quality=quality)
    actual = len(data) * 8 / (x.shape[0] * x.shape[1])
    assert abs(actual - estimated) / estimated < 0.02, (actual, estimated)


def test_higher_quality_spends_more_bits_and_gains_psnr(codec, motorcycle):
    from wzcodec.metrics import psnr

    x, _ = motorcycle
    sizes, quals = [], []
    for q in (1, 2.5, 4, 6):
        data = codec.encode(x, quality=q)
        sizes.append(len(data))
        quals.append(psnr(x, codec.decode(data)))
    assert sizes == sorted(sizes) and quals == sorted(quals)


@pytest.mark.parametrize("shape", [(375, 1242), (97, 131), (64, 64), (1, 1)])
def test_odd_sizes_round_trip_at_native_size(codec, motorcycle, shape):
    x, _ = motorcycle
    big = np.concatenate([x, x[:, ::-1]], axis=1)  # 500 x 1482 of real content
    img = np.ascontiguousarray(big[: shape[0], : shape[1]])
    data = codec.encode(img)
    header = parse(data).header
    assert (header.height, header.width) == shape
    assert codec.decode(data).shape == (*shape, 3)


def test_gray_source_decodes_to_equal_channels(codec, oakd):
    x, _ = oakd
    out = codec.decode(codec.encode(x))
    assert parse(codec.encode(x)).header.gray
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_pil_image_and_array_give_the_same_bytes(codec, motorcycle):
    from PIL import Image

    x, _ = motorcycle
    assert codec.encode(Image.fromarray(x)) == codec.encode(x)


def test_quality_out_of_range_is_refused(codec, motorcycle):
    with pytest.raises(wzcodec.WzError, match="quality"):
        codec.encode(motorcycle[0], quality=7)


def test_bitstream_for_other_weights_is_refused_by_id(codec, motorcycle):
    data = bytearray(codec.encode(motorcycle[0][:64, :64]))
    bs = parse(bytes(data))
    bs.header.weights_id = b"\x00" * 8
    with pytest.raises(wzcodec.BitstreamError, match="weights mismatch"):
        codec.decode(bs.to_bytes())


def test_unknown_model_is_a_user_error():
    with pytest.raises(wzcodec.WzError, match="unknown model"):
        wzcodec.load("no-such-model")


@pytest.mark.parametrize("name", ["atn", "ndic", "dsin", "hyperprior", "dsin-atn"])
def test_a_prepared_side_image_decodes_the_same_pixels_as_the_image(name, motorcycle):
    from wzcodec.errors import ImageError, WzError

    codec = wzcodec.load(name)
    x, y = (np.ascontiguousarray(a[100:228, 150:406]) for a in motorcycle)
    prepared = codec.prepare_side(y)
    for q in (1, 4):  # one preparation serves every quality and image
        data = codec.encode(x, quality=q)
        np.testing.assert_array_equal(codec.decode(data, side=prepared), codec.decode(data, side=y))
    with pytest.raises(ImageError, match="side image is 128x64"):
        codec.decode(data, side=codec.prepare_side(y[:64, :128]))
    with pytest.raises(WzError, match="another codec"):
        codec.decode(data, side=wzcodec.load(name).prepare_side(y))


@pytest.mark.parametrize("name", [n for n, e in CATALOG.items() if e.kind == "classical"])
def test_each_classical_codec_round_trips_through_codec_as_its_own_file(name, motorcycle):
    """A standard codec alone is a ``Codec`` like any model: its file inside the ``.wz`` is
    the codec's own (what ``classical`` writes), it decodes to the codec's own pixels, side
    images are ignored, and its rate is that plain file's (as ``wz eval`` counts it)."""
    from wzcodec import classical
    from wzcodec.metrics import psnr

    x, y = (a[:96, :160] for a in motorcycle)
    codec = wzcodec.load(name, quality=60)
    data = codec.encode(x)
    plain = codec.plain(data)
    assert plain == classical.encode(name, x, 60)
    assert codec.stored_size(data) == len(plain) < len(data)
    out = codec.decode(data)
    assert np.array_equal(out, classical.decode(plain))
    assert np.array_equal(codec.decode(data, side=y), out)
    assert codec.base_decode(data) is None  # nothing refines it
    assert psnr(x, out) > 25
    small = codec.encode(x, bpp=1.0)  # the one rate search: the largest file within 1 bpp
    assert codec.stored_size(small) <= len(small) <= 96 * 160 / 8
