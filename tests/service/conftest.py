"""Fixtures of the service tests (shared ones live in tests/service/fixtures.py; the per-network
engines of the anti-fraud tests in tests/service/network_support.py)."""

from tests.service.fixtures import clock, engine, recording
from tests.service.network_support import engines, tracker

__all__ = ["clock", "engine", "engines", "recording", "tracker"]
