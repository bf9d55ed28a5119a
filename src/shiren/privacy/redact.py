"""Scrub log text of things that must never be logged: ID numbers and encoded blobs.

This is a safety net, not the policy: code should not put such values into log calls in the first
place.  But exception messages from libraries, request bodies echoed by a framework or a
developer's debug line can carry them, and a log line once shipped cannot be recalled.

What is removed:

* anything shaped like a resident ID number — 17 digits and a digit or ``X``/``x`` (18 characters),
  or a 15-digit first-generation number — standing on its own (not part of a longer run of
  letters or digits).  It is not checksum-validated on purpose: a mistyped number is still
  personal information.
* base64 / base64url runs longer than 64 characters that mix upper-case letters, lower-case
  letters and digits: ciphertext blobs, encoded templates, images, tokens.  Encoded random bytes
  of that length practically always contain all three; requiring them keeps what *is* useful in
  a log: 64 hex characters (a SHA-256, a pseudonym) and long lower-case URL paths full of UUIDs.
"""

from __future__ import annotations

import logging
import re
from typing import Final

__all__ = ["BLOB_PLACEHOLDER", "ID_PLACEHOLDER", "RedactingFilter", "redact"]

ID_PLACEHOLDER: Final = "[id-number]"
BLOB_PLACEHOLDER: Final = "[blob]"

_ID_NUMBER: Final = re.compile(r"(?<![0-9A-Za-z])(?:\d{17}[\dXx]|\d{15})(?![0-9A-Za-z])")
_BLOB: Final = re.compile(r"[A-Za-z0-9+/_-]{65,}={0,2}")


def redact(text: str) -> str:
    """``text`` with ID-number-like values and long base64 runs replaced by placeholders."""
    return _BLOB.sub(_blob_placeholder, _ID_NUMBER.sub(ID_PLACEHOLDER, text))


def _blob_placeholder(match: re.Match[str]) -> str:
    run = match.group(0)
    mixed = (
        any(c.isupper() for c in run)
        and any(c.islower() for c in run)
        and any(c.isdigit() for c in run)
    )
    return BLOB_PLACEHOLDER if mixed else run


class RedactingFilter(logging.Filter):
    """A logging filter that applies :func:`redact` to every record's formatted message.

    Attach it to the handlers of the service (``handler.addFilter(RedactingFilter())``).  The
    message is formatted once here and the arguments dropped, so that a later formatter cannot
    re-insert an unredacted argument.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True
