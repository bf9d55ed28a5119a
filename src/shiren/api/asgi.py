"""The ASGI entry point for ``uvicorn shiren.api.asgi:build --factory`` (and ``shiren serve``).

A factory rather than a module-level ``app`` so that importing this module never reads settings
or loads models: each uvicorn worker builds its own service (models loaded once per worker).
"""

from __future__ import annotations

from fastapi import FastAPI

from shiren.api.app import configure_logging, create_app
from shiren.service.bootstrap import build_service
from shiren.service.settings import load_settings


def build() -> FastAPI:
    settings = load_settings()
    configure_logging(settings.log_level)
    service = build_service(settings)
    app = create_app(service, max_body_bytes=settings.max_body_bytes)
    app.state.public_url = settings.public_url
    return app


__all__ = ["build"]
