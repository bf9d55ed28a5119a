"""Time the ID-card reader per photo, by stage, on whatever cores it is given.

Run it on one core, as shiren is measured (onnxruntime already runs one intra-op thread)::

    taskset -c 0 .venv/bin/python scripts/measure_idcard.py \\
        ../shared/data/cn_idcard_specimen/cn_idcard_demo_specimen_front.jpg more.jpg \\
        [--repeat 7]

Each photo is read ``--repeat`` times after one warm-up read; the report (one JSON object) gives
per photo the median and best whole read (decode → locate → OCR → parse → checks → portrait) and
the median of the parts that dominate it: finding the card, the text detector, the whole OCR
(detector, direction classifier and recogniser) on the rectified card, and the recapture cue.
Nothing is printed about what the cards say.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shiren.core.image import decode_image
from shiren.idcard import checks, locate
from shiren.idcard.types import CARD_LIMITS, CardReader


def _ms(action: Callable[[], Any], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def measure(reader: CardReader, path: Path, repeat: int) -> dict[str, Any]:
    data = path.read_bytes()
    reader.read(data)  # warm-up: first-run allocations of every session
    whole = _ms(lambda: reader.read(data), repeat)
    pixels = decode_image(data, CARD_LIMITS).pixels
    location = locate.find_card(pixels)
    report: dict[str, Any] = {
        "image": path.name,
        "read_ms_p50": round(statistics.median(whole), 1),
        "read_ms_best": round(min(whole), 1),
        "locate_ms_p50": round(statistics.median(_ms(lambda: locate.find_card(pixels), repeat)), 1),
    }
    if location is not None:
        card = locate.rectify(pixels, location.corners)
        detect = getattr(reader.ocr, "detect", None)
        if detect is not None:
            report["ocr_detect_ms_p50"] = round(
                statistics.median(_ms(lambda: detect(card), repeat)), 1
            )
        report["ocr_ms_p50"] = round(
            statistics.median(_ms(lambda: reader.ocr.read(card), repeat)), 1
        )
        report["recapture_ms_p50"] = round(
            statistics.median(_ms(lambda: checks.recapture(card, 0.0), repeat)), 1
        )
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    reader = CardReader.load()
    rows = [measure(reader, path, args.repeat) for path in args.images]
    print(json.dumps({"photos": rows}, indent=2))


if __name__ == "__main__":
    main()
