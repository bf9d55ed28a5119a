"""Forged webhooks: the lender-side reference verifier (``verify_signature``) rejects every
forgery and never raises, whatever the header or body (issue 7).

Before the fix a body that was not UTF-8 raised ``UnicodeDecodeError`` and a non-ASCII ``v1``
raised ``TypeError`` (``hmac.compare_digest`` on non-ASCII ``str``): a receiver built on the
reference crashed (a 500 on its side) instead of answering "bad signature".
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from shiren.service.webhooks import DEFAULT_TOLERANCE_S, sign, verify_signature

SECRET = b"whsec_" + b"k" * 26
NOW = 1_800_000_000
BODY = '{"event":"check.decided","id":"d1","decision":"pass"}'
EXAMPLES = max(200, int(os.environ.get("SHIREN_FUZZ_EXAMPLES", "200")))


def test_the_genuine_signature_verifies_as_str_and_as_bytes() -> None:
    header = sign(SECRET, BODY, NOW)
    assert verify_signature(SECRET, BODY, header, now=NOW)
    assert verify_signature(SECRET, BODY.encode(), header, now=NOW + DEFAULT_TOLERANCE_S)


def test_forgeries_are_rejected() -> None:
    header = sign(SECRET, BODY, NOW)
    t, v1 = header.split(",")
    forged = {
        "wrong secret": (sign(b"whsec_guess" + b"x" * 21, BODY, NOW), BODY, NOW),
        "old timestamp (replay)": (header, BODY, NOW + DEFAULT_TOLERANCE_S + 1),
        "future timestamp": (header, BODY, NOW - DEFAULT_TOLERANCE_S - 1),
        "tampered body": (header, BODY.replace("pass", "fail"), NOW),
        "body with trailing space": (header, BODY + " ", NOW),
        "t moved, v1 kept (re-dated replay)": (f"t={NOW + 60},{v1}", BODY, NOW + 60),
        "no v1": (t, BODY, NOW),
        "no t": (v1, BODY, NOW),
        "empty": ("", BODY, NOW),
        "v1 upper-cased": (f"{t},{v1.upper()}", BODY, NOW),
        "v1 truncated": (header[:-2], BODY, NOW),
        "signed t negative": (f"t=-{NOW},{v1}", BODY, NOW),
        "t with sign": (f"t=+{NOW},{v1}", BODY, NOW),
        "non-ASCII v1": (f"{t},v1={'é' * 64}", BODY, NOW),
        "non-UTF-8 body": (header, b"\xff\xfe" + BODY.encode(), NOW),
        "huge t": (f"t={'9' * 400},{v1}", BODY, NOW),
    }
    for name, (hdr, body, now) in forged.items():
        assert verify_signature(SECRET, body, hdr, now=now) is False, name


@settings(max_examples=EXAMPLES, deadline=None, database=None)
@given(
    header=st.text(max_size=200) | st.builds(lambda t, v: f"t={t},v1={v}", st.text(), st.text()),
    body=st.binary(max_size=300) | st.text(max_size=300),
    now=st.integers(0, 2**40),
)
def test_arbitrary_headers_and_bodies_never_raise_and_never_verify(
    header: str, body: bytes | str, now: int
) -> None:
    assert verify_signature(SECRET, body, header, now=now) is False
