"""``SHIREN_SPEECH_RECOGNISER`` (issue 18): a lender's recogniser named as
``package.module:attribute``; anything wrong is ``config.invalid`` at start, naming the setting
and never a borrower's check."""

from __future__ import annotations

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
