"""English texts say "1 day", "30 days" — never "day(s)" or "time(s)" (issue 17): the message
tables, the ID-card messages, the capture page's consent as the borrower reads it, and the
console's texts."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from shiren.api.console_i18n import ZH
from shiren.idcard_messages import IDCARD_MESSAGES
from shiren.messages import _MESSAGES
from shiren.service.capture_texts import ADVICE, FALLBACK_LABELS, consent_texts

_PARENTHESISED_PLURAL = re.compile(r"[A-Za-z]\((?:s|es)\)")


def _english_texts() -> list[str]:
    texts = [en for _, en in _MESSAGES.values()]
    texts += [en for _, en in IDCARD_MESSAGES.values()]
    texts += [en for _, en in FALLBACK_LABELS.values()]
    texts += [en for pair in ADVICE.values() for _, en in pair]
    for days in (1, 2, 365):
        texts += list(consent_texts("Lender", days, id_card=True)["en"].values())
    texts += list(ZH)
    folder = resources.files("shiren.api").joinpath("console_templates")
    texts += [page.read_text("utf-8") for page in folder.iterdir()]
    return texts


def test_no_english_text_says_s_in_parentheses() -> None:
    found = [t for t in _english_texts() if _PARENTHESISED_PLURAL.search(t)]
    assert found == []


@pytest.mark.parametrize(("days", "shown"), [(1, "at most 1 day,"), (30, "at most 30 days,")])
def test_the_consent_says_day_or_days(days: int, shown: str) -> None:
    retention = consent_texts("Lender", days)["en"]["retention"]
    assert shown in retention
