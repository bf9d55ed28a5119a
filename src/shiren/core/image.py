"""Untrusted bytes → ``(H, W, 3)`` ``uint8`` RGB array, safely.

Any byte string becomes a :class:`DecodedImage` or raises :class:`ImageError`, nothing else.
Checks run cheapest-first: length (``IMAGE_EMPTY``/``IMAGE_TOO_LARGE``); magic bytes (JPEG, PNG,
WebP, BMP, else ``IMAGE_UNSUPPORTED_FORMAT``); header dimensions from Pillow's lazy ``open``
before any pixel is decoded (``IMAGE_TOO_MANY_PIXELS``/``IMAGE_TOO_SMALL``: defeats decompression
bombs); then decoding, Pillow's exceptions mapped to ``IMAGE_TRUNCATED``/``IMAGE_CORRUPT``.
Truncated data is never padded (``ImageFile.LOAD_TRUNCATED_IMAGES`` is left alone).

No global state is changed, neither Pillow's nor the warnings filters (``catch_warnings`` is not
thread-safe).  Pillow's own guard (``Image.MAX_IMAGE_PIXELS``) still runs inside ``open`` and
maps to ``IMAGE_TOO_MANY_PIXELS``, so ``max_pixels`` above twice that has no effect; between 1x
and 2x Pillow emits a ``DecompressionBombWarning`` (mapped too if the host makes it an error).
ICC profiles are ignored.  Messages never echo the path or bytes (a path can hold a name).
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt
from PIL import Image

from shiren.core.geometry import RGBImage
from shiren.errors import ErrorCode, ImageError

ImageFormat = Literal["jpeg", "png", "webp", "bmp"]

_PIL_FORMATS: dict[ImageFormat, str] = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "bmp": "BMP"}
_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_WHITE = (255, 255, 255)
_GRAY16_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
_EXIF_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True, slots=True)
class ImageLimits:
    """Caps applied before decoding.  Sizes in bytes or pixels.

    ``max_decode_side_px``: when set, the output is downscaled so its long side is at most this
    many pixels (JPEGs are decoded at a reduced DCT scale first, which is much faster).
    """

    max_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_side_px: int = 12_000
    min_side_px: int = 32
    max_decode_side_px: int | None = None

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_pixels, self.max_side_px, self.min_side_px) < 1:
            raise ValueError("image limits must be positive")
        if self.min_side_px > self.max_side_px:
            raise ValueError("min_side_px must not exceed max_side_px")
        if self.max_decode_side_px is not None and self.max_decode_side_px < 1:
            raise ValueError("max_decode_side_px must be positive or None")


DEFAULT_LIMITS = ImageLimits()


@dataclass(frozen=True, slots=True, eq=False)
class DecodedImage:
    """A decoded, upright image.  ``eq=False``: arrays do not compare as one bool.

    ``pixels``: ``(H, W, 3)`` ``uint8`` RGB, C-contiguous, EXIF orientation applied.
    ``format``: ``"jpeg"``, ``"png"``, ``"webp"`` or ``"bmp"`` (callers wrapping an in-memory
    array may use their own label, e.g. ``"array"``).
    ``original_size``: ``(w, h)`` as stored in the file, before EXIF rotation and downscaling.
    ``exif_orientation``: the EXIF orientation that was applied, 1..8 (1 if absent or broken).
    ``scale``: decoded pixels per original pixel (1.0 unless ``max_decode_side_px`` shrank it).
    """

    pixels: RGBImage
    format: str
    original_size: tuple[int, int]
    exif_orientation: int
    scale: float = 1.0


class _DryReader(io.BytesIO):
    """A ``BytesIO`` that remembers whether a sized read came back short (ran past the end).

    Only armed while Pillow parses the header: the pixel decoder reads in blocks, and its last
    block is short for complete files too.
    """

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.armed = True
        self.ran_dry = False

    def read(self, size: int | None = -1, /) -> bytes:
        chunk = super().read(size)
        if self.armed and size is not None and size > 0 and len(chunk) < size:
            self.ran_dry = True
        return chunk


def _error(code: ErrorCode, message: str, **detail: int | str) -> ImageError:
    return ImageError(message, code=code, detail=dict(detail))


def sniff_format(data: bytes) -> ImageFormat:
    """The format named by the magic bytes; a cut-off magic is ``IMAGE_TRUNCATED``."""
    if data.startswith(_JPEG_MAGIC):
        return "jpeg"
    if data.startswith(_PNG_MAGIC):
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"BM"):
        return "bmp"
    head = data[:12]
    is_riff_prefix = b"RIFF".startswith(head[:4]) and b"WEBP".startswith(head[8:])
    if _JPEG_MAGIC.startswith(head) or _PNG_MAGIC.startswith(head) or is_riff_prefix:
        raise _error(ErrorCode.IMAGE_TRUNCATED, "The image ends inside its format signature.")
    raise _error(
        ErrorCode.IMAGE_UNSUPPORTED_FORMAT, "Only JPEG, PNG, WebP and BMP images are accepted."
    )


def decode_image(
    data: bytes | bytearray | memoryview, limits: ImageLimits = DEFAULT_LIMITS
) -> DecodedImage:
    """Decode untrusted image bytes into an upright ``(H, W, 3)`` uint8 RGB image.

    Raises :class:`ImageError` (and nothing else) for any input that cannot be used.
    """
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size == 0:
        raise _error(ErrorCode.IMAGE_EMPTY, "The image is empty.")
    if size > limits.max_bytes:  # before any copy or parse
        raise _error(
            ErrorCode.IMAGE_TOO_LARGE, "The image file is too large.", max_bytes=limits.max_bytes
        )
    raw = bytes(data)  # no copy for bytes
    fmt = sniff_format(raw)
    reader = _DryReader(raw)
    try:
        return _decode(reader, fmt, limits)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_many_pixels(limits, *_header_size(raw, fmt)) from exc
    except Exception as exc:  # Pillow raises a zoo (OSError, SyntaxError, ValueError, ...)
        code = _failure_code(exc, raw, fmt, reader.ran_dry)
        raise _error(code, f"The {_PIL_FORMATS[fmt]} image cannot be decoded.") from exc


def _decode(reader: _DryReader, fmt: ImageFormat, limits: ImageLimits) -> DecodedImage:
    img = Image.open(reader, formats=[_PIL_FORMATS[fmt]])  # header only: lazy
    reader.armed = False
    with img:
        original_size = (int(img.size[0]), int(img.size[1]))
        _check_dimensions(original_size, limits)
        target = _target_size(original_size, limits.max_decode_side_px)
        if target is not None and fmt == "jpeg":
            img.draft("RGB", target)  # DCT-domain 1/2, 1/4 or 1/8 decode, still >= target
        img.load()
        pixels: npt.NDArray[np.uint8] = np.asarray(_to_rgb(img))
        orientation = _exif_orientation(img)
    if target is not None and pixels.shape[1::-1] != target:
        # Area averaging: antialiased like Pillow's LANCZOS here, but ~5x faster (12 vs 63 ms).
        resized = cv2.resize(pixels, target, interpolation=cv2.INTER_AREA)
        pixels = np.asarray(resized, dtype=np.uint8)
    pixels = _apply_orientation(pixels, orientation)
    scale = 1.0 if target is None else max(target) / max(original_size)
    return DecodedImage(pixels, fmt, original_size, orientation, scale)


def _too_many_pixels(limits: ImageLimits, width: int = 0, height: int = 0) -> ImageError:
    return _error(
        ErrorCode.IMAGE_TOO_MANY_PIXELS,
        "The image has too many pixels.",
        width=width,
        height=height,
        max_pixels=limits.max_pixels,
        max_side_px=limits.max_side_px,
    )


def _header_size(data: bytes, fmt: ImageFormat) -> tuple[int, int]:
    """``(w, h)`` as the header declares them, read by the format's plugin directly: Pillow's
    own bomb guard (in ``Image.open``, which refused this image) is not in that path, and no
    pixel is decoded.  ``(0, 0)`` when even the header cannot be read."""
    try:
        factory, _accept = Image.OPEN[_PIL_FORMATS[fmt]]
        with factory(io.BytesIO(data), "") as header:
            return int(header.size[0]), int(header.size[1])
    except Exception:  # a header Pillow could not read twice: no dimensions to report
        return 0, 0


def _check_dimensions(size: tuple[int, int], limits: ImageLimits) -> None:
    """Refuse from the header alone: ``size`` is ``(w, h)`` in pixels."""
    width, height = size
    if width * height > limits.max_pixels or max(width, height) > limits.max_side_px:
        raise _too_many_pixels(limits, width, height)
    if min(width, height) < limits.min_side_px:
        raise _error(
            ErrorCode.IMAGE_TOO_SMALL,
            "The image is too small.",
            width=width,
            height=height,
            min_side_px=limits.min_side_px,
        )


def _target_size(size: tuple[int, int], max_side: int | None) -> tuple[int, int] | None:
    """``(w, h)`` with the long side at most ``max_side``, or None when no downscale is needed."""
    if max_side is None or max(size) <= max_side:
        return None
    factor = max_side / max(size)
    width = max(1, min(max_side, round(size[0] * factor)))
    return width, max(1, min(max_side, round(size[1] * factor)))


def _failure_code(exc: Exception, data: bytes, fmt: ImageFormat, header_ran_dry: bool) -> ErrorCode:
    """Truncated when Pillow ran out of data or the container declares more bytes than sent."""
    if header_ran_dry or isinstance(exc, EOFError) or "truncated" in str(exc).lower():
        return ErrorCode.IMAGE_TRUNCATED
    declared = 0
    if fmt == "webp":
        declared = int.from_bytes(data[4:8], "little") + 8  # RIFF chunk size + its header
    elif fmt == "bmp" and len(data) >= 6:
        declared = int.from_bytes(data[2:6], "little")  # bfSize (some writers leave it 0)
    return ErrorCode.IMAGE_TRUNCATED if declared > len(data) else ErrorCode.IMAGE_CORRUPT


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any decoded mode → 8-bit RGB.  Alpha is composited onto white.

    White, not black: a transparent background (a cut-out selfie, a scanned ID card with
    alpha) must not look like a dark scene to the quality gate, and white is what browsers and
    the capture UI show behind it.
    """
    if img.mode in _GRAY16_MODES:
        return _gray16_to_rgb(img)
    if img.mode == "RGB":
        return img
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")  # applies tRNS / palette alpha too
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, (0, 0), rgba)
        return background
    return img.convert("RGB")  # L, 1, P, CMYK (Pillow undoes Adobe inversion), YCbCr, ...


def _gray16_to_rgb(img: Image.Image) -> Image.Image:
    """16-bit gray (``I;16*``, or ``I`` holding 0..65535) → RGB, scaled by 255/65535.

    Pillow's own ``convert("L")`` clips these modes at 255; ``round(v / 257)`` is exact.
    """
    values = np.asarray(img).astype(np.int64)
    np.clip(values, 0, 65535, out=values)
    gray = ((values + 128) // 257).astype(np.uint8)
    transparent = img.info.get("transparency")
    if isinstance(transparent, int):
        gray[values == transparent] = 255  # tRNS: one gray value is fully transparent → white
    return Image.fromarray(gray).convert("RGB")


def _exif_orientation(img: Image.Image) -> int:
    """The EXIF (or XMP) orientation 1..8; 1 when absent, out of range or unparsable."""
    try:
        value = img.getexif().get(_EXIF_ORIENTATION_TAG, 1)
    except Exception:  # broken EXIF must not fail the decode; the pixels are still fine
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _apply_orientation(pixels: npt.NDArray[np.uint8], orientation: int) -> RGBImage:
    """Rotate/flip ``(H, W, 3)`` pixels upright, as ``PIL.ImageOps.exif_transpose`` would."""
    if orientation >= 5:  # 5..8 swap the axes, then flip like 1..4
        pixels = pixels.transpose(1, 0, 2)
    step = (orientation - 1) % 4  # 0: none, 1: left-right, 2: both (180°), 3: top-bottom
    if step in (1, 2):
        pixels = pixels[:, ::-1]
    if step in (2, 3):
        pixels = pixels[::-1]
    return np.array(pixels, dtype=np.uint8, order="C")  # a writable, C-contiguous copy


def load_image(path: str | os.PathLike[str], limits: ImageLimits = DEFAULT_LIMITS) -> DecodedImage:
    """Read at most ``limits.max_bytes + 1`` bytes from a regular file and decode them."""
    return decode_image(_read_capped(path, limits.max_bytes + 1), limits)


def _read_capped(path: str | os.PathLike[str], max_read: int) -> bytes:
    """Read up to ``max_read`` bytes.  O_NONBLOCK so a FIFO cannot hang the caller."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise _error(ErrorCode.INPUT_FILE_NOT_FOUND, "The image file does not exist.") from exc
    except (OSError, ValueError) as exc:  # permissions, a directory on Windows, a NUL in the path
        raise _error(ErrorCode.INPUT_FILE_UNREADABLE, "The image file cannot be read.") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _error(ErrorCode.INPUT_FILE_UNREADABLE, "The image path is not a regular file.")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(max_read)
    except OSError as exc:
        raise _error(ErrorCode.INPUT_FILE_UNREADABLE, "The image file cannot be read.") from exc
    finally:
        os.close(fd)


def image_from_array(
    arr: npt.NDArray[np.generic], limits: ImageLimits = DEFAULT_LIMITS
) -> RGBImage:
    """Validate an in-memory image for the Python API and return a C-contiguous RGB copy.

    Accepts ``uint8`` arrays shaped ``(H, W)`` gray, ``(H, W, 1)``, ``(H, W, 3)`` RGB or
    ``(H, W, 4)`` RGBA (straight alpha, composited onto white).  Pixel limits apply as for files.
    """
    if not isinstance(arr, np.ndarray) or arr.dtype != np.uint8:
        raise _error(ErrorCode.IMAGE_UNSUPPORTED_FORMAT, "Expected a uint8 numpy array.")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise _error(
            ErrorCode.IMAGE_UNSUPPORTED_FORMAT, "Expected an (H, W), (H, W, 3) or (H, W, 4) array."
        )
    if arr.size == 0:
        raise _error(ErrorCode.IMAGE_EMPTY, "The image array is empty.")
    _check_dimensions((int(arr.shape[1]), int(arr.shape[0])), limits)
    if arr.ndim == 2 or arr.shape[2] == 1:
        gray = arr.reshape(arr.shape[0], arr.shape[1], 1)
        return np.ascontiguousarray(np.repeat(gray, 3, axis=2))
    if arr.shape[2] == 4:
        alpha = arr[:, :, 3:].astype(np.uint32)
        blended = (arr[:, :, :3].astype(np.uint32) * alpha + 255 * (255 - alpha) + 127) // 255
        return np.ascontiguousarray(blended.astype(np.uint8))
    return np.array(arr, dtype=np.uint8, order="C")  # a copy: the caller keeps its own buffer


__all__ = [
    "DEFAULT_LIMITS",
    "DecodedImage",
    "ImageFormat",
    "ImageLimits",
    "decode_image",
    "image_from_array",
    "load_image",
    "sniff_format",
]
