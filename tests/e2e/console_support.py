"""Minimal real-browser fixtures for the console's end-to-end test: a live uvicorn server on a
free loopback port, and Debian's headless Chromium driven by Playwright.

(The browser itself comes from ``tests/e2e/conftest.py``'s session Playwright.  Nothing here
downloads a browser: ``playwright install`` is never run, the
system ``/usr/bin/chromium`` is launched through ``executable_path``.)
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("SHIREN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread; yields its base URL."""
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def desktop_chromium(playwright_instance: Any) -> Iterator[Any]:
    """Headless Chromium for staff pages, on the session's one Playwright instance (the
    capture tests' ``playwright_instance`` in tests/e2e/conftest.py: a second sync Playwright
    in the same process is refused).  Missing tools are skipped there, or failed in CI."""
    chromium = playwright_instance.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
    try:
        yield chromium
    finally:
        chromium.close()


def shoot(page: Any, name: str) -> Path:
    """Save a full-page screenshot of ``page`` as ``out/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


__all__ = ["CHROMIUM", "CHROMIUM_FLAGS", "SCREENSHOTS", "desktop_chromium", "live_server", "shoot"]
