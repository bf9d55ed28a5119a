"""Tests for shiren.core.image: every fixture is generated here with Pillow/numpy."""

from __future__ import annotations

import io
import os
import struct
import time
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from shiren.core.image import (
    DecodedImage,
    ImageLimits,
    _gray16_to_rgb,
    decode_image,
    image_from_array,
    load_image,
    sniff_format,
)
from shiren.errors import ErrorCode, ImageError
from tests.conftest import SHARED, require

U8 = npt.NDArray[np.uint8]
LFW_DIR = SHARED / "lfw_view2" / "lfw-deepfunneled"
IMAGE_CODES = {
    ErrorCode.IMAGE_EMPTY,
    ErrorCode.IMAGE_TOO_LARGE,
    ErrorCode.IMAGE_TOO_MANY_PIXELS,
    ErrorCode.IMAGE_TOO_SMALL,
    ErrorCode.IMAGE_UNSUPPORTED_FORMAT,
    ErrorCode.IMAGE_CORRUPT,
    ErrorCode.IMAGE_TRUNCATED,
}


# -- fixtures -------------------------------------------------------------------------------


def asym(width: int = 96, height: int = 64) -> U8:
    """A smooth, asymmetric RGB image: red ramps right, green ramps down, a blue top-left block."""
    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([x * 255 // (width - 1), y * 255 // (height - 1), np.full_like(x, 40)], -1)
    img[: height // 4, : width // 3, 2] = 230
    return img.astype(np.uint8)


def encode(img: Image.Image | U8, fmt: str, **kw: Any) -> bytes:
    pil = Image.fromarray(img) if isinstance(img, np.ndarray) else img
    buf = io.BytesIO()
    pil.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def raw_png(width: int, height: int, depth: int, color: int, rows: bytes) -> bytes:
    """A hand-made PNG: IHDR as given, one IDAT with ``zlib(rows)``, IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows, 9))
        + png_chunk(b"IEND", b"")
    )


def exif_bytes(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()


def assert_valid(decoded: DecodedImage) -> None:
    px = decoded.pixels
    assert px.dtype == np.uint8
    assert px.ndim == 3
    assert px.shape[2] == 3
    assert px.flags.c_contiguous
    assert px.flags.writeable
    assert decoded.format in {"jpeg", "png", "webp", "bmp"}
    assert 1 <= decoded.exif_orientation <= 8


def code_of(data: bytes, limits: ImageLimits | None = None) -> ErrorCode:
    with pytest.raises(ImageError) as info:
        decode_image(data, limits or ImageLimits())
    return info.value.code


def mad(a: U8, b: U8) -> float:
    """Mean absolute difference."""
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# -- formats and modes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "kw", "name", "tol"),
    [
        ("PNG", {}, "png", 0.0),
        ("BMP", {}, "bmp", 0.0),
        ("WEBP", {"lossless": True}, "webp", 0.0),
        ("WEBP", {"quality": 90}, "webp", 4.0),
        ("JPEG", {"quality": 95}, "jpeg", 3.0),
        ("JPEG", {"quality": 90, "progressive": True}, "jpeg", 3.0),
    ],
)
def test_round_trip(fmt: str, kw: dict[str, Any], name: str, tol: float) -> None:
    src = asym()
    decoded = decode_image(encode(src, fmt, **kw))
    assert_valid(decoded)
    assert decoded.format == name
    assert decoded.original_size == (96, 64)
    assert decoded.exif_orientation == 1
    assert decoded.scale == 1.0
    assert decoded.pixels.shape == (64, 96, 3)
    assert mad(decoded.pixels, src) <= tol


def test_accepts_bytearray_and_memoryview() -> None:
    data = encode(asym(), "PNG")
    assert np.array_equal(decode_image(bytearray(data)).pixels, asym())
    assert np.array_equal(decode_image(memoryview(data)).pixels, asym())


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "WEBP"])
def test_gray_l(fmt: str) -> None:
    gray = asym()[:, :, 0]
    decoded = decode_image(encode(gray, fmt, **({"lossless": True} if fmt == "WEBP" else {})))
    assert_valid(decoded)
    assert np.array_equal(decoded.pixels[:, :, 0], decoded.pixels[:, :, 2])
    assert mad(decoded.pixels[:, :, 1], gray) <= 2.0


@pytest.mark.parametrize("fmt", ["PNG", "BMP"])
def test_one_bit(fmt: str) -> None:
    bits = np.zeros((40, 48), dtype=bool)
    bits[:, :20] = True
    decoded = decode_image(encode(Image.fromarray(bits), fmt))
    assert_valid(decoded)
    assert (decoded.pixels[:, :20] == 255).all()
    assert (decoded.pixels[:, 20:] == 0).all()


def test_palette_without_and_with_transparency() -> None:
    src = asym()
    pal = Image.fromarray(src).quantize(16)
    plain = decode_image(encode(pal, "PNG"))
    assert np.array_equal(plain.pixels, np.asarray(pal.convert("RGB")))
    index = int(np.asarray(pal)[0, -1])
    pal.info["transparency"] = index
    decoded = decode_image(encode(pal, "PNG", transparency=index))
    transparent = np.asarray(pal) == index
    assert (decoded.pixels[transparent] == 255).all()
    assert np.array_equal(decoded.pixels[~transparent], plain.pixels[~transparent])


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_rgba_composited_on_white(fmt: str) -> None:
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[:20, :, 3] = 0  # fully transparent → white
    rgba[20:30, :, 3] = 255  # opaque → unchanged
    rgba[30:, :, 3] = 128  # half → halfway to white
    kw = {"lossless": True, "exact": True} if fmt == "WEBP" else {}
    px = decode_image(encode(Image.fromarray(rgba), fmt, **kw)).pixels
    assert (px[:20] == 255).all()
    assert (px[20:30] == (10, 20, 30)).all()
    expected = np.array([10, 20, 30]) * 128 / 255 + 255 * 127 / 255
    assert np.abs(px[30:].astype(float) - expected).max() <= 1.0


def test_la_composited_on_white() -> None:
    la = np.zeros((40, 40, 2), np.uint8)
    la[..., 0] = 50
    la[:, :20, 1] = 255
    px = decode_image(encode(Image.fromarray(la, "LA"), "PNG")).pixels
    assert (px[:, :20] == 50).all()
    assert (px[:, 20:] == 255).all()


def test_rgba_bmp() -> None:
    rgba = np.dstack([asym(), np.full((64, 96), 255, np.uint8)])
    decoded = decode_image(encode(Image.fromarray(rgba), "BMP"))
    assert np.array_equal(decoded.pixels, asym())


def test_cmyk_jpeg_adobe_inverted() -> None:
    cmyk = np.zeros((48, 64, 4), np.uint8)
    cmyk[:, :32, 0] = 200  # cyan
    cmyk[:, 32:, 3] = 100  # some black
    src = Image.fromarray(cmyk, "CMYK")
    data = encode(src, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).info.get("adobe") is not None  # Pillow writes Adobe
    decoded = decode_image(data)
    assert_valid(decoded)
    assert mad(decoded.pixels, np.asarray(src.convert("RGB"))) <= 3.0
    assert decoded.pixels[:, :32, 0].mean() < 80  # cyan has little red, not inverted
    assert decoded.pixels[:, :32, 1:].mean() > 200


def test_gray16_png_is_scaled_not_clipped() -> None:
    values = np.linspace(0, 65535, 64 * 48).astype(np.uint16).reshape(48, 64)
    for mode in ("I;16", "I;16B"):
        raw = values.astype("<u2" if mode == "I;16" else ">u2").tobytes()
        data = encode(Image.frombytes(mode, (64, 48), raw), "PNG")
        decoded = decode_image(data)
        assert_valid(decoded)
        expected = np.round(values / 257.0).astype(np.uint8)
        assert np.array_equal(decoded.pixels[:, :, 0], expected)
        assert decoded.pixels.max() == 255
        assert decoded.pixels.min() == 0


def test_gray16_hand_made_png_with_transparency() -> None:
    values = np.full((40, 40), 30000, np.uint16)
    values[:, :10] = 1234
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in values)
    ihdr = struct.pack(">IIBBBBB", 40, 40, 16, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"tRNS", struct.pack(">H", 1234))
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )
    px = decode_image(data).pixels
    assert (px[:, :10] == 255).all()  # transparent gray → white
    assert (px[:, 10:] == round(30000 / 257)).all()


def test_mode_i_is_treated_as_16_bit() -> None:
    img = Image.fromarray(np.array([[0, 257, 65535, 70000, -5]], dtype=np.int32))
    assert img.mode == "I"
    assert np.asarray(_gray16_to_rgb(img))[0, :, 0].tolist() == [0, 1, 255, 255, 0]


def test_rgb16_png_is_scaled() -> None:
    rng = np.random.default_rng(7)
    values = rng.integers(0, 65536, (40, 48, 3)).astype(np.uint16)
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in values)
    decoded = decode_image(raw_png(48, 40, 16, 2, rows))
    assert_valid(decoded)
    expected = np.round(values / 257.0)
    assert np.abs(decoded.pixels - expected).max() <= 1.0  # Pillow keeps the high byte


def test_first_frame_of_animated_png_and_webp() -> None:
    frames = [Image.new("RGB", (48, 40), c) for c in ((200, 0, 0), (0, 200, 0), (0, 0, 200))]
    for fmt, kw in (("PNG", {}), ("WEBP", {"lossless": True})):
        data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, **kw)
        assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
        px = decode_image(data).pixels
        assert (px == (200, 0, 0)).all(), fmt


def test_real_lfw_jpeg() -> None:
    files = sorted(require(LFW_DIR).glob("*/*.jpg"))[:1]
    assert files, "no LFW image found"
    decoded = load_image(files[0])
    assert_valid(decoded)
    assert decoded.pixels.shape == (250, 250, 3)
    assert decoded.format == "jpeg"


# -- EXIF orientation -----------------------------------------------------------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_png_exact(orientation: int) -> None:
    src = Image.fromarray(asym())
    data = encode(src, "PNG", exif=exif_bytes(orientation))
    decoded = decode_image(data)
    assert_valid(decoded)
    assert decoded.exif_orientation == orientation
    assert decoded.original_size == (96, 64)
    tagged = src.copy()
    tagged.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(tagged))  # Pillow as the oracle
    assert np.array_equal(decoded.pixels, expected)
    if orientation >= 5:
        assert decoded.pixels.shape == (96, 64, 3)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_jpeg(orientation: int) -> None:
    src = asym()
    decoded = decode_image(encode(src, "JPEG", quality=95, exif=exif_bytes(orientation)))
    tagged = Image.fromarray(src)
    tagged.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(tagged))
    assert decoded.exif_orientation == orientation
    assert decoded.pixels.shape == expected.shape
    assert mad(decoded.pixels, expected) <= 3.0


def test_exif_orientation_webp() -> None:
    decoded = decode_image(encode(asym(), "WEBP", lossless=True, exif=exif_bytes(6)))
    assert decoded.exif_orientation == 6
    assert np.array_equal(decoded.pixels, np.rot90(asym(), k=-1))


def jpeg_with_app1(payload: bytes) -> bytes:
    base = encode(asym(), "JPEG")
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return base[:2] + segment + base[2:]


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")
@pytest.mark.parametrize(
    "payload",
    [
        b"Exif\x00\x00" + b"\xde\xad\xbe\xef" * 8,  # garbage TIFF header
        b"Exif\x00\x00II*\x00\xff\xff\xff\x7f",  # IFD offset far outside
        b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x09",
        b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff",  # absurd entry count
        b"Exif\x00\x00",
    ],
)
def test_broken_exif_is_ignored(payload: bytes) -> None:
    decoded = decode_image(jpeg_with_app1(payload))
    assert_valid(decoded)
    assert decoded.exif_orientation == 1
    assert decoded.pixels.shape == (64, 96, 3)


def test_out_of_range_orientation_is_ignored() -> None:
    exif = Image.Exif()
    exif[0x0112] = 42
    decoded = decode_image(encode(asym(), "PNG", exif=exif.tobytes()))
    assert decoded.exif_orientation == 1
    assert np.array_equal(decoded.pixels, asym())


# -- downscale at decode --------------------------------------------------------------------


def test_max_decode_side_px_jpeg_and_png() -> None:
    big = np.asarray(Image.fromarray(asym()).resize((2000, 1500), Image.Resampling.BILINEAR))
    limits = ImageLimits(max_decode_side_px=500)
    for fmt in ("JPEG", "PNG"):
        decoded = decode_image(encode(big, fmt), limits)
        assert_valid(decoded)
        assert decoded.original_size == (2000, 1500)
        assert decoded.pixels.shape == (375, 500, 3)
        assert decoded.scale == pytest.approx(0.25)
        small = np.asarray(Image.fromarray(big).resize((500, 375), Image.Resampling.BOX))
        assert mad(decoded.pixels, small) <= 3.0


def test_max_decode_side_px_with_rotation_and_no_upscale() -> None:
    data = encode(np.zeros((600, 800, 3), np.uint8), "JPEG", exif=exif_bytes(6))
    decoded = decode_image(data, ImageLimits(max_decode_side_px=400))
    assert decoded.pixels.shape == (400, 300, 3)
    assert decoded.original_size == (800, 600)
    same = decode_image(encode(asym(), "PNG"), ImageLimits(max_decode_side_px=4000))
    assert same.scale == 1.0
    assert same.pixels.shape == (64, 96, 3)


# -- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", ErrorCode.IMAGE_EMPTY),
        (b"\x00", ErrorCode.IMAGE_UNSUPPORTED_FORMAT),
        (b"\xff", ErrorCode.IMAGE_TRUNCATED),  # the start of a JPEG signature
        (b"\x89PNG", ErrorCode.IMAGE_TRUNCATED),
        (b"RIFF\x10\x00", ErrorCode.IMAGE_TRUNCATED),
        (b"hello, this is not an image\n" * 4, ErrorCode.IMAGE_UNSUPPORTED_FORMAT),
        (
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n",
            ErrorCode.IMAGE_UNSUPPORTED_FORMAT,
        ),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00heicmif1", ErrorCode.IMAGE_UNSUPPORTED_FORMAT),
        (b"PK\x03\x04" + b"\x00" * 60, ErrorCode.IMAGE_UNSUPPORTED_FORMAT),
        (b'<svg xmlns="http://www.w3.org/2000/svg"/>', ErrorCode.IMAGE_UNSUPPORTED_FORMAT),
        (b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40, ErrorCode.IMAGE_UNSUPPORTED_FORMAT),
    ],
)
def test_refused_bytes(data: bytes, code: ErrorCode) -> None:
    assert code_of(data) == code


@pytest.mark.parametrize("fmt", ["GIF", "TIFF", "ICO", "PPM"])
def test_other_pillow_formats_are_unsupported(fmt: str) -> None:
    assert code_of(encode(asym(), fmt)) == ErrorCode.IMAGE_UNSUPPORTED_FORMAT


def test_sniff_ignores_names_and_trusts_magic() -> None:
    assert sniff_format(encode(asym(), "PNG")) == "png"
    assert sniff_format(encode(asym(), "WEBP")) == "webp"
    with pytest.raises(ImageError):
        sniff_format(encode(asym(), "GIF"))


@pytest.mark.parametrize(
    ("fmt", "kw"),
    [
        ("JPEG", {}),
        ("JPEG", {"progressive": True}),
        ("PNG", {}),
        ("WEBP", {}),
        ("WEBP", {"lossless": True}),
        ("BMP", {}),
    ],
)
@pytest.mark.parametrize("fraction", [0.02, 0.1, 0.25, 0.5, 0.75, 0.95])
def test_truncated(fmt: str, kw: dict[str, Any], fraction: float) -> None:
    rng = np.random.default_rng(3)
    noisy = np.clip(asym(160, 120) + rng.integers(0, 40, (120, 160, 3)), 0, 255).astype(np.uint8)
    data = encode(noisy, fmt, **kw)
    cut = max(16, int(len(data) * fraction))
    assert code_of(data[:cut]) == ErrorCode.IMAGE_TRUNCATED


def test_truncated_jpeg_just_before_end_marker() -> None:
    data = encode(asym(), "JPEG")
    assert code_of(data[:-2]) == ErrorCode.IMAGE_TRUNCATED


def replace_at(data: bytes, start: int, new: bytes) -> bytes:
    return data[:start] + new + data[start + len(new) :]


def test_corrupt_after_valid_magic() -> None:
    jpeg = encode(asym(), "JPEG")
    dht = jpeg.find(b"\xff\xc4")
    assert code_of(replace_at(jpeg, dht + 5, b"\xff" * 20)) == ErrorCode.IMAGE_CORRUPT
    sof = jpeg.find(b"\xff\xc0")
    assert code_of(replace_at(jpeg, sof + 9, b"\x07")) == ErrorCode.IMAGE_CORRUPT
    sos = jpeg.find(b"\xff\xda")
    assert code_of(replace_at(jpeg, sos + 4, b"\xee" * 8)) == ErrorCode.IMAGE_CORRUPT

    png = encode(asym(), "PNG")
    idat = png.find(b"IDAT") + 4
    garbage = np.random.default_rng(1).bytes(64)
    assert code_of(replace_at(png, idat + 20, garbage)) == ErrorCode.IMAGE_CORRUPT
    assert code_of(replace_at(png, 12, b"IHDX")) == ErrorCode.IMAGE_CORRUPT

    for kw in ({}, {"lossless": True}):
        webp = encode(asym(), "WEBP", **kw)
        assert code_of(replace_at(webp, 20, b"\xff" * 20)) == ErrorCode.IMAGE_CORRUPT

    bmp = encode(asym(), "BMP")
    assert code_of(replace_at(bmp, 28, b"\x07\x00")) == ErrorCode.IMAGE_CORRUPT  # 7 bpp
    assert code_of(replace_at(bmp, 30, b"\x09\x00\x00\x00")) == ErrorCode.IMAGE_CORRUPT


def bomb_png(width: int, height: int) -> bytes:
    """A valid IHDR claiming ``width × height`` gray pixels over a tiny zlib stream of zeros."""
    return raw_png(width, height, 8, 0, b"\x00" * (width + 1) * 4)


def test_png_decompression_bomb_is_refused_from_the_header() -> None:
    data = bomb_png(60_000, 60_000)
    assert len(data) < 1024
    start = time.perf_counter()
    for limits in (ImageLimits(), ImageLimits(max_pixels=10**10, max_side_px=100_000)):
        with pytest.raises(ImageError) as info:
            decode_image(data, limits)
        assert info.value.code == ErrorCode.IMAGE_TOO_MANY_PIXELS
        # the header's real size, also where Pillow's own guard refused it (issue 15: was 0 x 0)
        assert (info.value.detail["width"], info.value.detail["height"]) == (60_000, 60_000)
    assert time.perf_counter() - start < 0.5


def test_too_many_pixels_under_pillow_limits() -> None:
    with pytest.raises(ImageError) as info:
        decode_image(bomb_png(8000, 6000))  # 48 Mpx > 40 Mpx, below Pillow's own guard
    assert info.value.code == ErrorCode.IMAGE_TOO_MANY_PIXELS
    assert info.value.detail["width"] == 8000
    assert code_of(bomb_png(12_001, 40)) == ErrorCode.IMAGE_TOO_MANY_PIXELS  # one side too long
    limits = ImageLimits(max_pixels=100 * 100)
    assert code_of(encode(np.zeros((101, 100, 3), np.uint8), "PNG"), limits) == (
        ErrorCode.IMAGE_TOO_MANY_PIXELS
    )


def test_pillow_bomb_warning_range_maps_to_too_many_pixels() -> None:
    data = bomb_png(10_000, 10_000)  # 100 Mpx: Pillow warns (between 1x and 2x its limit)
    for action in ("ignore", "error"):
        with warnings.catch_warnings():
            warnings.simplefilter(action)
            assert code_of(data) == ErrorCode.IMAGE_TOO_MANY_PIXELS


def test_jpeg_declaring_huge_size_is_refused() -> None:
    jpeg = encode(asym(), "JPEG")
    sof = jpeg.find(b"\xff\xc0")
    assert code_of(replace_at(jpeg, sof + 5, b"\xfd\xe8\xfd\xe8")) == (
        ErrorCode.IMAGE_TOO_MANY_PIXELS
    )


def test_too_large_is_checked_before_decoding() -> None:
    data = encode(asym(), "PNG")
    assert code_of(data, ImageLimits(max_bytes=len(data) - 1)) == ErrorCode.IMAGE_TOO_LARGE
    assert decode_image(data, ImageLimits(max_bytes=len(data))).pixels.shape == (64, 96, 3)
    assert code_of(b"\x00" * 101, ImageLimits(max_bytes=100)) == ErrorCode.IMAGE_TOO_LARGE
    wide = memoryview(np.zeros(26, np.uint32).tobytes()).cast("I")  # 104 bytes, 26 items
    with pytest.raises(ImageError) as info:
        decode_image(wide, ImageLimits(max_bytes=100))
    assert info.value.code == ErrorCode.IMAGE_TOO_LARGE


def test_too_small() -> None:
    assert code_of(encode(np.zeros((8, 8, 3), np.uint8), "PNG")) == ErrorCode.IMAGE_TOO_SMALL
    assert code_of(encode(np.zeros((31, 500, 3), np.uint8), "JPEG")) == ErrorCode.IMAGE_TOO_SMALL
    tiny = encode(np.zeros((8, 8, 3), np.uint8), "PNG")
    assert decode_image(tiny, ImageLimits(min_side_px=8)).pixels.shape == (8, 8, 3)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="positive"):
        ImageLimits(max_bytes=0)
    with pytest.raises(ValueError, match="min_side_px"):
        ImageLimits(min_side_px=100, max_side_px=50)
    with pytest.raises(ValueError, match="max_decode_side_px"):
        ImageLimits(max_decode_side_px=0)


# -- files ----------------------------------------------------------------------------------


def test_load_image_happy_path(tmp_path: Path) -> None:
    path = tmp_path / "photo.txt"  # the name does not matter, the bytes do
    path.write_bytes(encode(asym(), "PNG"))
    assert np.array_equal(load_image(path).pixels, asym())
    assert np.array_equal(load_image(str(path)).pixels, asym())


def test_load_image_errors(tmp_path: Path) -> None:
    with pytest.raises(ImageError) as info:
        load_image(tmp_path / "missing.jpg")
    assert info.value.code == ErrorCode.INPUT_FILE_NOT_FOUND
    assert "missing" not in info.value.message  # paths may carry names: never echoed
    with pytest.raises(ImageError) as info:
        load_image(tmp_path)
    assert info.value.code == ErrorCode.INPUT_FILE_UNREADABLE
    big = tmp_path / "big.png"
    big.write_bytes(encode(asym(), "PNG") + b"\x00" * 5000)
    with pytest.raises(ImageError) as info:
        load_image(big, ImageLimits(max_bytes=1000))
    assert info.value.code == ErrorCode.IMAGE_TOO_LARGE


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX only")
def test_load_image_fifo_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ImageError) as info:
        load_image(fifo)
    assert info.value.code == ErrorCode.INPUT_FILE_UNREADABLE


# -- in-memory arrays -----------------------------------------------------------------------


def test_image_from_array() -> None:
    rgb = asym()
    out = image_from_array(rgb)
    assert np.array_equal(out, rgb)
    assert out.flags.c_contiguous
    assert not np.shares_memory(out, rgb)
    gray = rgb[:, :, 0]
    assert np.array_equal(image_from_array(gray), np.dstack([gray] * 3))
    assert np.array_equal(image_from_array(gray[:, :, None]), np.dstack([gray] * 3))
    assert image_from_array(rgb[:, ::-1]).flags.c_contiguous
    rgba = np.dstack([rgb, np.zeros_like(gray)])
    assert (image_from_array(rgba) == 255).all()
    rgba[..., 3] = 255
    assert np.array_equal(image_from_array(rgba), rgb)


@pytest.mark.parametrize(
    ("arr", "code"),
    [
        (np.zeros((64, 64, 3), np.float32), ErrorCode.IMAGE_UNSUPPORTED_FORMAT),
        (np.zeros((64, 64, 2), np.uint8), ErrorCode.IMAGE_UNSUPPORTED_FORMAT),
        (np.zeros((2, 64, 64, 3), np.uint8), ErrorCode.IMAGE_UNSUPPORTED_FORMAT),
        (np.zeros((0, 64, 3), np.uint8), ErrorCode.IMAGE_EMPTY),
        (np.zeros((8, 8, 3), np.uint8), ErrorCode.IMAGE_TOO_SMALL),
        (np.zeros((20_000, 40), np.uint8), ErrorCode.IMAGE_TOO_MANY_PIXELS),
        ([[1, 2], [3, 4]], ErrorCode.IMAGE_UNSUPPORTED_FORMAT),
    ],
)
def test_image_from_array_refusals(arr: Any, code: ErrorCode) -> None:
    with pytest.raises(ImageError) as info:
        image_from_array(arr)
    assert info.value.code == code


# -- fuzz -----------------------------------------------------------------------------------


def _seeds() -> list[bytes]:
    src = asym(48, 40)
    return [
        encode(src, "JPEG", quality=80),
        encode(src, "JPEG", progressive=True, exif=exif_bytes(6)),
        encode(src, "PNG"),
        encode(Image.fromarray(src).quantize(8), "PNG"),
        encode(src, "WEBP"),
        encode(src, "WEBP", lossless=True),
        encode(src, "BMP"),
    ]


SEEDS = _seeds()
MAGICS = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x01\x00\x00WEBPVP8 ", b"BM"]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FUZZ_LIMITS = ImageLimits(min_side_px=1)


def decodes_or_image_error(data: bytes) -> None:
    try:
        decoded = decode_image(data, FUZZ_LIMITS)
    except ImageError as exc:
        code = exc.code
    else:
        assert_valid(decoded)
        return
    assert code in IMAGE_CODES


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(data: bytes) -> None:
    decodes_or_image_error(data)


@FUZZ
@given(st.sampled_from(MAGICS), st.binary(max_size=2048))
def test_fuzz_magic_then_random(magic: bytes, tail: bytes) -> None:
    decodes_or_image_error(magic + tail)


@FUZZ
@given(
    st.sampled_from(range(len(SEEDS))),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=8),
    st.none() | st.floats(0, 1),
)
def test_fuzz_mutated_valid_images(
    seed: int, flips: list[tuple[float, int]], cut: float | None
) -> None:
    data = bytearray(SEEDS[seed])
    for where, value in flips:
        data[min(len(data) - 1, int(where * len(data)))] = value
    if cut is not None:
        data = data[: int(cut * len(data))]
    decodes_or_image_error(bytes(data))


def test_decode_is_fast_enough_for_vga_jpeg() -> None:
    data = encode(np.asarray(Image.fromarray(asym()).resize((640, 480))), "JPEG", quality=90)
    decode_image(data)
    start = time.perf_counter()
    for _ in range(20):
        decode_image(data)
    assert (time.perf_counter() - start) / 20 < 0.05  # ~2 ms here; loose for slow CI
