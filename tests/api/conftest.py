"""Fixtures of the API tests (shared ones live in tests/service/fixtures.py)."""

from tests.service.fixtures import clock, engine, recording

__all__ = ["clock", "engine", "recording"]
