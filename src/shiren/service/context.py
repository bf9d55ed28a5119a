"""What every use case of the service stands on, handed over as one small value.

A use case receives this (and the few collaborators of its own, such as the face matcher or the
fraud guard) — never the whole service — so what it can touch is visible in its constructor.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from shiren.service.journal import Journal
from shiren.service.vault import KeyVault
from shiren.storage.ports import UnitOfWorkFactory

Clock = Callable[[], datetime]


@dataclass(slots=True)
class Context:
    """Storage, keys, the audit journal and the clock (one shared instance per service: a test
    that moves the clock moves it for every use case)."""

    store: UnitOfWorkFactory
    """Opens a unit of work (one transaction)."""
    vault: KeyVault
    """Seals and opens tenant and subject data (:mod:`shiren.service.vault`)."""
    journal: Journal
    """Audit lines and webhook events, in the caller's unit of work."""
    clock: Clock
    """Now, as an aware UTC datetime (tests inject a fake)."""
    models_lock: threading.Lock = field(default_factory=threading.Lock)
    """The face tracker keeps per-video state: one capture is analysed at a time."""


__all__ = ["Clock", "Context"]
