"""``SHIREN_SPEECH_RECOGNISER`` (issue 18): a lender's recogniser named as
``package.module:attribute``; anything wrong is ``config.invalid`` at start, naming the setting
and never a borrower's check."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shiren.errors import ConfigError, ErrorCode
from shiren.models.speech import load_recogniser
from shiren.service.engine import Engine
from shiren.service.settings import load_settings
from tests.support.speech_plugin import HearsNothing


def test_a_factory_makes_the_recogniser() -> None:
    made = load_recogniser("tests.support.speech_plugin:make")
    assert isinstance(made, HearsNothing)
    assert made.info.name == "test-hears-nothing"


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        ("not a spec", "package.module:attribute"),
        ("tests.support.no_such_module:make", "cannot be imported"),
        ("tests.support.speech_plugin:nothing", "has no"),
        ("tests.support.speech_plugin:NOT_CALLABLE", "not callable"),
        ("tests.support.speech_plugin:broken", "the factory failed (RuntimeError)"),
        ("tests.support.speech_plugin:wrong", "no SpeechRecognizer"),
    ],
)
def test_a_bad_plug_in_is_a_config_error(spec: str, why: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_recogniser(spec)
    assert err.value.code is ErrorCode.CONFIG_INVALID
    assert why in str(err.value)
    assert err.value.detail == {"fields": ["speech_recogniser"]}
    assert "licence server" not in str(err.value)  # the plug-in's own message is not repeated


def test_a_bad_plug_in_fails_the_start_before_the_models_load() -> None:
    settings = load_settings(speech_recogniser="tests.support.speech_plugin:wrong")
    with pytest.raises(ConfigError):
        Engine.load(settings)


def test_the_setting_reaches_the_service_checker() -> None:
    from shiren.service.app import ShirenService
    from shiren.service.keys import ServiceKeys
    from shiren.storage.memory import MemoryStore

    engine = Engine.load(load_settings(speech_recogniser="tests.support.speech_plugin:make"))
    assert isinstance(engine.checker.recogniser, HearsNothing)
    service = ShirenService(store=MemoryStore(), keys=ServiceKeys.generate(), engine=engine)
    assert service.checker.recogniser is engine.checker.recogniser


def test_serve_refuses_a_bad_plug_in_with_a_typed_error(tmp_path: Path) -> None:
    """``shiren serve`` checks the factory imports before starting its workers: a one-line
    ``config.invalid``, exit 3 (the CLI's code for configuration), not a traceback in a worker."""
    env = {
        **os.environ,
        "SHIREN_SPEECH_RECOGNISER": "tests.support.no_such_module:make",
        "SHIREN_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}",
    }
    done = subprocess.run(
        [sys.executable, "-m", "shiren.cli", "serve", "--port", "0"],
        capture_output=True, text=True, timeout=120, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr[-2000:]  # run_guarded: config errors exit 3
    assert "config.invalid" in done.stderr
    assert "Traceback" not in done.stderr
