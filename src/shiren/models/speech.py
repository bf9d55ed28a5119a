"""A lender's own speech recogniser for the read-the-digits challenge (issue 18).

No registry package carries an offline Chinese recogniser, so none ships; the challenge stands
on its other signals without one.  A lender who has one (an on-premise engine, a licensed model)
names a factory in ``SHIREN_SPEECH_RECOGNISER`` — ``package.module:attribute``, importable where
the service runs — and the service calls it once at start, with no argument.  What it returns
must satisfy :class:`~shiren.models.protocols.SpeechRecognizer`: an ``info``
(:class:`~shiren.models.protocols.ModelInfo`) and ``digits(audio, rate, lang) -> str``.  Every
read-the-digits check then also asks it which digits were said (the ``digits`` signal:
``liveness.digits_mismatch`` when they are not exactly the digits shown).

Anything wrong — a module that does not import, an attribute that is not there, a factory that
fails or returns something else — is ``config.invalid`` at start, never at a borrower's check.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import cast

from shiren.errors import ConfigError, ErrorCode
from shiren.models.protocols import ModelInfo, SpeechRecognizer

SPEC = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*$")
"""``package.module:attribute``."""


def _bad(spec: str, why: str) -> ConfigError:
    return ConfigError(
        f"SHIREN_SPEECH_RECOGNISER {spec!r}: {why}",
        code=ErrorCode.CONFIG_INVALID,
        detail={"fields": ["speech_recogniser"]},
    )


def resolve_factory(spec: str) -> Callable[[], object]:
    """The factory ``spec`` names, imported but not called (``shiren serve`` checks it before
    starting its workers, which call it)."""
    if not SPEC.match(spec):
        raise _bad(spec, "expected package.module:attribute")
    module_name, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except ImportError:
        raise _bad(spec, f"module {module_name!r} cannot be imported") from None
    except AttributeError:
        raise _bad(spec, f"{module_name!r} has no {attribute!r}") from None
    if not callable(factory):
        raise _bad(spec, "not callable")
    made: Callable[[], object] = factory
    return made


def load_recogniser(spec: str) -> SpeechRecognizer:
    """The recogniser ``spec`` names (see the module docstring)."""
    factory = resolve_factory(spec)
    try:
        made = factory()
    except Exception as exc:  # a plug-in's own failure, reported by type only
        raise _bad(spec, f"the factory failed ({type(exc).__name__})") from None
    if not isinstance(getattr(made, "info", None), ModelInfo) or not callable(
        getattr(made, "digits", None)
    ):
        raise _bad(spec, "it made no SpeechRecognizer (an info: ModelInfo and a digits method)")
    return cast(SpeechRecognizer, made)  # checked just above: info and digits


__all__ = ["SPEC", "load_recogniser", "resolve_factory"]
