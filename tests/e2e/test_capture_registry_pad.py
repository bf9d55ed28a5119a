"""The capture page in real Chromium on a machine WITHOUT MiniFASNet (issue 19).

The service's passive signal is then the registry's ``human-antispoof`` (``SHIREN_MINIFASNET_DIR``
unset, a model cache holding only what the set-up installs from the registries).  The same walks as
``test_capture_page.py``: the live webcam video passes at the passive-only test level (where the
passive signal alone decides, at the ``normal`` level's threshold), the same video still fails at
the normal level on the challenge it cannot answer (not on the face, not for want of a passive
model), and a still photo and a printed photo are rejected at the normal level.  The printed
photo is NOT stopped by the passive signal alone (the passive-only walk is a strict xfail that
records it): ``human-antispoof`` scores Silent-Face's poster above its threshold (docs/LIVENESS.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from shiren.models import human_fas, mobilefacenet
from shiren.models.registry import MINIFASNET_ENV, build_passive_model, default_model_dir
from tests.e2e.conftest import LiveServer, start_server
from tests.e2e.test_capture_page import (
    LIVENESS_FAILURES,
    Browser,
    capture,
    demo,
    live_video,
    printed_photo,
    reference_of_live,
    still_of_live,
)

__all__ = ["live_video", "printed_photo", "reference_of_live", "still_of_live"]  # fixtures

REAL_CACHE = default_model_dir()
pytestmark = pytest.mark.skipif(
    not (mobilefacenet.npm_dir(REAL_CACHE) / mobilefacenet.TARBALL).is_file(),
    reason="scripts/setup.sh packs the npm tarball",
)


@pytest.fixture(scope="module")
def registry_pad(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The passive model the service picks with MiniFASNet not configured: built with
    ``SHIREN_MINIFASNET_DIR`` unset from a cache without MiniFASNet's translations."""
    models = tmp_path_factory.mktemp("cache") / "shiren" / "models"
    models.mkdir(parents=True)
    for path in REAL_CACHE.iterdir():
        if not path.name.startswith("minifasnet") and ".tmp" not in path.name:
            (models / path.name).symlink_to(path, target_is_directory=path.is_dir())
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(MINIFASNET_ENV, raising=False)
        pad = build_passive_model(model_dir=models)
    assert pad.info.name == human_fas.DEFAULT
    return pad


@pytest.fixture(scope="module")
def registry_server(
    registry_pad: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], LiveServer]]:
    from tests.service.support import build_engine

    engine = build_engine(registry_pad)
    servers: dict[str, LiveServer] = {}

    def get(mode: str) -> LiveServer:
        if mode not in servers:
            folder = tmp_path_factory.mktemp("registry-server-" + mode.replace(":", "-"))
            passive = mode.split(":", maxsplit=1)[0] == "passive_only"
            servers[mode] = start_server(engine, folder, passive_only=passive)
        return servers[mode]

    yield get
    for server in servers.values():
        server.stop()


def test_live_video_passes_passive_only_with_the_registry_model(
    registry_server: Callable[[str], LiveServer],
    browser: Browser,
    live_video: Path,
    reference_of_live: bytes,
) -> None:
    server = registry_server("passive_only")
    session = demo(server, reference_of_live)
    assert session.level == "normal"
    with browser(camera=live_video) as page:
        out = capture(page, server, session, "human-pass-passive-only", screenshots=False)
    assert out.check["decision"] == "pass", out.check
    assert out.page_result["decision"] == "pass"


def test_live_video_fails_at_normal_on_the_challenge_not_the_passive_model(
    registry_server: Callable[[str], LiveServer],
    browser: Browser,
    live_video: Path,
    reference_of_live: bytes,
) -> None:
    server = registry_server("normal")
    session = demo(server, reference_of_live)
    with browser(camera=live_video) as page:
        out = capture(page, server, session, "human-fail-normal", screenshots=False)
    reasons = set(out.check["reasons"])
    assert out.check["decision"] != "pass", out.check
    assert reasons & LIVENESS_FAILURES, reasons
    assert "liveness.passive_unavailable" not in reasons, reasons
    assert "match.below_threshold" not in reasons, out.check


def test_still_photo_fails_at_normal_with_the_registry_model(
    registry_server: Callable[[str], LiveServer],
    browser: Browser,
    still_of_live: Path,
    reference_of_live: bytes,
) -> None:
    server = registry_server("normal:still")
    session = demo(server, reference_of_live, level="normal")
    with browser(camera=still_of_live) as page:
        out = capture(page, server, session, "human-still-normal", screenshots=False)
    assert out.check["decision"] != "pass", out.check
    assert set(out.check["reasons"]) & LIVENESS_FAILURES, out.check


def test_printed_photo_fails_at_normal_with_the_registry_model(
    registry_server: Callable[[str], LiveServer],
    browser: Browser,
    printed_photo: tuple[Path, bytes],
) -> None:
    camera, reference = printed_photo
    server = registry_server("normal:poster")
    session = demo(server, reference, level="normal")
    with browser(camera=camera) as page:
        out = capture(page, server, session, "human-poster-normal", screenshots=False)
    assert out.check["decision"] != "pass", out.check
    assert set(out.check["reasons"]) & LIVENESS_FAILURES, out.check


@pytest.mark.xfail(
    strict=True,
    reason="human-antispoof scores Silent-Face's poster (0.26) above its normal threshold (0.23): "
    "the passive signal alone does not stop it, the challenge, motion and colour signals do "
    "(dtn-fas, the previous registry model, did stop it; docs/LIVENESS.md)",
)
def test_printed_photo_fails_passive_only_with_the_registry_model(
    registry_server: Callable[[str], LiveServer],
    browser: Browser,
    printed_photo: tuple[Path, bytes],
) -> None:
    camera, reference = printed_photo
    server = registry_server("passive_only")
    session = demo(server, reference)
    with browser(camera=camera) as page:
        out = capture(page, server, session, "human-poster-passive-only", screenshots=False)
    assert out.check["decision"] != "pass", out.check
    assert "liveness.spoof_suspected" in out.check["reasons"], out.check
