"""The calibrated similarity thresholds shiren ships, with where each came from.

``data/thresholds.json`` maps ``embedder name`` → ``{views key: {...}}`` (a views key is e.g.
``"mesh+5pt-flip"``) holding the
operating ``threshold`` (the default decision), thresholds per target FAR, and provenance (data
set, protocol, date, command).  ``shiren calibrate --write`` regenerates an entry; the model card
(docs/MODEL_CARD.md) explains the numbers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from shiren.errors import ConfigError, ErrorCode


@cache
def shipped_thresholds() -> dict[str, Any]:
    text = resources.files("shiren").joinpath("data/thresholds.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def views_key(views: Sequence[str]) -> str:
    """The table key of a set of alignment views: ``"mesh+5pt-flip"``."""
    return "+".join(views)


def threshold_entry(embedder: str, *, views: Sequence[str]) -> dict[str, Any]:
    """The calibration record for ``embedder`` with these alignment views."""
    table = shipped_thresholds()
    variant = views_key(views)
    try:
        entry: dict[str, Any] = table[embedder][variant]
    except KeyError:
        raise ConfigError(
            f"no calibrated threshold ships for embedder {embedder!r} ({variant}); "
            "set one explicitly (run `shiren calibrate`)",
            code=ErrorCode.CONFIG_INVALID,
            detail={"embedder": embedder},
        ) from None
    return entry


def default_threshold(embedder: str, *, views: Sequence[str]) -> float:
    """The default operating threshold (similarity, higher = more alike)."""
    return float(threshold_entry(embedder, views=views)["threshold"])
