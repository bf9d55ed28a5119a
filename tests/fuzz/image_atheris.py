"""Coverage-guided fuzz target for the image decoder (atheris / libFuzzer), issue 7.

Instrumented: ``shiren.core.image`` and Pillow's Python side (format sniffing, the JPEG/PNG/
WebP/BMP plugins' header and chunk parsers, EXIF); Pillow's C decoders run uninstrumented.  The
property: every input decodes to a valid image or raises :class:`shiren.errors.ImageError` —
any other exception is a crash that libFuzzer reports (and writes to ``-artifact_prefix``).

Run (bounded; the default suite runs it through ``tests/unit/test_image_atheris.py``)::

    .venv/bin/python -m tests.fuzz.image_atheris -runs=200000 -max_total_time=1800 CORPUS_DIR
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["shiren.core", "PIL"]):
    from PIL import (  # the plugins the decoder opens, instrumented (Pillow imports them lazily)
        BmpImagePlugin,
        Image,
        JpegImagePlugin,
        PngImagePlugin,
        TiffImagePlugin,  # EXIF
        WebPImagePlugin,
    )

    from shiren.core.image import ImageLimits, decode_image
    from shiren.errors import ImageError

PLUGINS = (BmpImagePlugin, JpegImagePlugin, PngImagePlugin, TiffImagePlugin, WebPImagePlugin)
Image.init()

LIMITS = ImageLimits(min_side_px=1, max_pixels=4_000_000, max_side_px=8192)


def one_input(data: bytes) -> None:
    try:
        decoded = decode_image(data, LIMITS)
    except ImageError:
        return
    px = decoded.pixels
    if px.ndim != 3 or px.shape[2] != 3 or px.dtype.name != "uint8":
        raise AssertionError(f"bad decoded array {px.shape} {px.dtype}")


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
