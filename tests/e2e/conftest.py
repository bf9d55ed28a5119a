"""Real-browser fixtures (reusable by every tests/e2e file): Debian's Chromium driven by the
``playwright`` package (``executable_path=/usr/bin/chromium``; ``playwright install`` is never
run), a fake camera playing a ``.y4m`` made at test time by ffmpeg, and the real service
(uvicorn in a thread, SQLite in a temporary folder, the real models loaded once per process).

* :func:`ensure_browser_tools` installs ``chromium``, ``ffmpeg`` and a CJK font when missing
  (``scripts/browser-deps.sh``, root only) and otherwise skips — or fails under ``CI``.
* ``live_server("passive_only" | "normal")`` starts (once per process) a service with the given
  liveness configuration and returns a :class:`LiveServer`.
* ``browser`` opens a page with a given camera file: ``with browser(camera=y4m) as page``.
* :func:`shot` saves a screenshot under ``out/screenshots/`` (ignored by git).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shiren.api.app import create_app
from shiren.service.app import Engine, ShirenService
from shiren.service.bootstrap import build_service
from shiren.service.settings import Settings
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "out" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
)
MOBILE = {"width": 360, "height": 780}


def ensure_browser_tools() -> None:
    def present() -> bool:
        return Path(CHROMIUM).exists() and shutil.which("ffmpeg") is not None

    if not present() and os.geteuid() == 0:
        subprocess.run(["bash", str(ROOT / "scripts" / "browser-deps.sh")], check=False)
    if present():
        return
    if os.environ.get("CI"):
        pytest.fail("chromium/ffmpeg missing in CI: run scripts/browser-deps.sh")
    pytest.skip("chromium or ffmpeg is not installed (scripts/browser-deps.sh)")


def make_y4m(
    source: Path,
    out: Path,
    *,
    still_seconds: float | None = None,
    width: int = 640,
    fps: int = 15,
    seconds: float | None = None,
    filters: str = "",
) -> Path:
    """A camera file for Chromium: ``width`` px wide, ``fps``, yuv420p.  ``still_seconds``: loop
    a still image for that long (Chromium loops the file, so a second is enough); ``seconds``:
    only the start of a video; ``filters``: more ffmpeg filters after the scaling."""
    if out.exists():
        return out
    cmd = ["ffmpeg", "-y", "-loglevel", "error"]
    if still_seconds is not None:
        cmd += ["-loop", "1", "-t", str(still_seconds)]
    elif seconds is not None:
        cmd += ["-t", str(seconds)]
    vf = f"scale={width}:-2" + (f",{filters}" if filters else "")
    cmd += ["-i", str(source), "-an", "-pix_fmt", "yuv420p", "-vf", vf, "-r", str(fps)]
    subprocess.run([*cmd, str(out)], check=True, timeout=120)
    return out


def ffmpeg_frame(source: Path, at_s: float, out: Path) -> bytes:
    """One decoded frame of a video as JPEG (a reference photo of the person in it)."""
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-ss", f"{at_s:.2f}", "-i", str(source)]
    subprocess.run([*cmd, "-frames:v", "1", "-q:v", "2", str(out)], check=True, timeout=60)
    return out.read_bytes()


def shot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    service: ShirenService
    server: Any
    thread: threading.Thread

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_server(engine: Engine, folder: Path, *, passive_only: bool) -> LiveServer:
    """The real app (``create_app`` over ``bootstrap.build_service``) on a free port."""
    import uvicorn

    folder.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        database_url=f"sqlite:///{folder / 'shiren.db'}",
        keys_file=str(folder / "keys.json"),
        test_passive_only=passive_only,
    )
    service = build_service(settings, engine=engine)
    port = _free_port()
    config = uvicorn.Config(
        create_app(service), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    return LiveServer(f"http://127.0.0.1:{port}", service, server, thread)


@pytest.fixture(scope="session")
def browser_tools() -> None:
    ensure_browser_tools()


@pytest.fixture(scope="session")
def e2e_engine(real_pad: Any) -> Engine:
    from tests.service.support import build_engine

    return build_engine(real_pad)


@pytest.fixture(scope="session")
def live_server(
    e2e_engine: Engine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], LiveServer]]:
    """``get("normal")`` / ``get("passive_only")``; a suffix (``"normal:photo"``) gives a
    separate server — with its own replay guard — in the same configuration."""
    servers: dict[str, LiveServer] = {}

    def get(mode: str) -> LiveServer:
        if mode not in servers:
            folder = tmp_path_factory.mktemp("server-" + mode.replace(":", "-"))
            passive = mode.split(":", maxsplit=1)[0] == "passive_only"
            servers[mode] = start_server(e2e_engine, folder, passive_only=passive)
        return servers[mode]

    yield get
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="session")
def camera_files(browser_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder for the .y4m camera files (made on demand; several MB per second of video)."""
    return tmp_path_factory.mktemp("camera")


@pytest.fixture(scope="session")
def playwright_instance(browser_tools: None) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture
def browser(playwright_instance: Any) -> Callable[..., AbstractContextManager[Any]]:
    """``with browser(camera=path, locale="zh-CN") as page`` — a fresh Chromium whose camera
    plays ``camera`` (without one Chromium shows its green test pattern), on a 360-px phone;
    ``allow_camera=False`` answers the permission prompt with "Block"."""

    @contextmanager
    def open_page(
        camera: Path | None = None,
        locale: str = "zh-CN",
        allow_camera: bool = True,
        user_agent: str | None = None,
        viewport: dict[str, int] | None = None,
        has_touch: bool = True,
        microphone: Path | None = None,
    ) -> Iterator[Any]:
        args = list(CHROMIUM_FLAGS)
        if not allow_camera:  # the borrower taps "Block"
            args.remove("--use-fake-ui-for-media-stream")
        if camera is not None:
            args.append(f"--use-file-for-fake-video-capture={camera.resolve()}")
        if microphone is not None:  # a WAV file plays as the microphone (looped)
            args.append(f"--use-file-for-fake-audio-capture={microphone.resolve()}")
        instance = playwright_instance.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=args
        )
        try:
            extra = {"user_agent": user_agent} if user_agent else {}
            context = instance.new_context(
                viewport=viewport or MOBILE,
                screen=viewport or MOBILE,
                device_scale_factor=1,
                locale=locale,
                has_touch=has_touch,
                **extra,
            )
            if allow_camera:
                context.grant_permissions(["camera", "microphone"])
            page = context.new_page()
            page.set_default_timeout(30_000)
            yield page
        finally:
            instance.close()

    return open_page


@pytest.fixture(scope="session")
def real_mov() -> Path:
    from tests.conftest import REAL_MOV

    return require(REAL_MOV)
