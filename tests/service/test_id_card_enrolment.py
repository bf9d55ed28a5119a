"""Enrolment from the borrower's ID card (issue 16): the card is read and checked, its portrait
becomes the reference, the checks' outcomes (never the values) are audited, and the live face of
the same person then passes against the printed portrait.

Cards are drawn at run time (:mod:`shiren.eval.idcard_render`, a CJK font) with the recording's
own face as the printed portrait and photographed on a table; the reader is the real PP-OCRv4.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

import numpy as np
import pytest

from shiren.errors import ErrorCode, FaceError, InputError
from shiren.eval.idcard_content import Person, spoil_check_character
from shiren.eval.idcard_render import CardPainter
from shiren.idcard import CardReader
from shiren.service.app import ConsentIn, Engine, ShirenService
from shiren.service.id_cards import IdCards
from shiren.service.keys import ServiceKeys
from shiren.storage.memory import MemoryStore
from tests.service.fixtures import FakeClock
from tests.service.support import CONSENT, Recording
from tests.support import id_cards


@pytest.fixture(scope="module")
def painter() -> CardPainter:
    return id_cards.painter()


@pytest.fixture(scope="module")
def cards() -> IdCards:
    return IdCards(CardReader.load())


@pytest.fixture
def service(
    engine: Engine, recording: Recording, clock: FakeClock, cards: IdCards
) -> ShirenService:
    return ShirenService(
        store=MemoryStore(),
        keys=ServiceKeys.generate(),
        engine=engine,
        clock=clock,
        draw=recording.drawer(),
        detect_replays=False,
        id_cards=cards,
    )


def _person(clock: FakeClock, seed: int, **changes: object) -> Person:
    return id_cards.holder(seed, clock().date(), **changes)


def _front(painter: CardPainter, recording: Recording, person: Person, seed: int = 0) -> bytes:
    return id_cards.front_photo(painter, recording.still_frame(), person, seed)


def _back(painter: CardPainter, person: Person, seed: int = 1) -> bytes:
    return id_cards.back_photo(painter, person, seed)


def _capture(service: ShirenService, tenant: object, view: object, recording: Recording) -> object:
    frames, times = recording.answer(view.challenge)  # type: ignore[attr-defined]
    return service.submit(
        tenant,  # type: ignore[arg-type]
        view.session.id,  # type: ignore[attr-defined]
        nonce=view.session.nonce,  # type: ignore[attr-defined]
        frames=frames,
        times_ms=times,
    )


def test_a_card_enrols_and_the_same_person_passes(
    service: ShirenService, painter: CardPainter, recording: Recording, clock: FakeClock
) -> None:
    tenant, _ = service.create_tenant("lender")
    person = _person(clock, 1)
    subject, view, card = service.enrol_with_card(
        tenant,
        external_ref="u1",
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        id_card_front=_front(painter, recording, person),
        id_card_back=_back(painter, person),
        id_number=person.id_number,
    )
    summary = card.summary()
    assert summary["fields"]["name"]["value"] == person.name
    assert summary["id_number_masked"].endswith(person.id_number[-1])
    assert person.id_number not in json.dumps(summary, ensure_ascii=False)
    assert summary["review_signals"] == []
    assert {c["code"] for c in summary["checks"]} >= {"idcard.number_invalid", "idcard.expired"}
    exported = service.export_subject(tenant, subject.id)
    assert exported["subject"]["name"] == person.name  # from the card, sealed as always
    assert exported["references"][0]["kind"] == "id_card"
    with service.store() as uow:
        events = uow.audit.read(tenant.id, start_seq=1, limit=100)
    read = [e for e in events if e.kind == "idcard.read"]
    assert len(read) == 1
    assert person.name not in read[0].payload
    assert person.id_number not in read[0].payload
    check = _capture(service, tenant, view, recording)
    assert check.check.decision.value == "pass", check.check.reasons  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", ["lender_number_differs", "invalid_check_digit", "expired"])
def test_a_card_that_fails_a_check_is_refused_and_nothing_is_stored(
    service: ShirenService,
    painter: CardPainter,
    recording: Recording,
    clock: FakeClock,
    case: str,
) -> None:
    tenant, _ = service.create_tenant("lender")
    person = _person(clock, 2)
    given = person.id_number
    expected = {"lender_number_differs": "idcard.number_mismatch"}.get(case, "")
    if case == "lender_number_differs":
        given = _person(clock, 3).id_number
    elif case == "invalid_check_digit":
        person = replace(
            person, id_number=spoil_check_character(np.random.default_rng(4), person.id_number)
        )
        given, expected = "", "idcard.number_invalid"
    else:
        person = replace(person, valid_until=date(2020, 1, 1), valid_from=date(2010, 1, 1))
        expected = "idcard.expired"
    with pytest.raises(InputError) as err:
        service.enrol_with_card(
            tenant,
            external_ref="u1",
            consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
            id_card_front=_front(painter, recording, person),
            id_card_back=_back(painter, person) if case == "expired" else None,
            id_number=given or None,
        )
    assert err.value.code is ErrorCode.IDCARD_REJECTED
    assert expected in err.value.detail["checks"]
    with service.store() as uow:
        assert uow.subjects.get_by_external_ref(tenant.id, "u1") is None


def test_a_name_that_differs_sends_the_enrolment_to_review(
    service: ShirenService, painter: CardPainter, recording: Recording, clock: FakeClock
) -> None:
    tenant, _ = service.create_tenant("lender")
    person = _person(clock, 5)
    _subject, view, card = service.enrol_with_card(
        tenant,
        external_ref="u2",
        consent=ConsentIn(**CONSENT),  # type: ignore[arg-type]
        id_card_front=_front(painter, recording, person),
        name="欧阳某某",
    )
    assert card.review == ("idcard.name_mismatch",)
    check = _capture(service, tenant, view, recording)
    assert check.check.decision.value == "review"  # type: ignore[attr-defined]
    assert "idcard.name_mismatch" in check.check.reasons  # type: ignore[attr-defined]


def test_what_is_not_a_readable_front_is_a_typed_error(
    service: ShirenService, painter: CardPainter, recording: Recording, clock: FakeClock
) -> None:
    tenant, _ = service.create_tenant("lender")
    person = _person(clock, 6)
    consent = ConsentIn(**CONSENT)  # type: ignore[arg-type]
    with pytest.raises(InputError) as err:  # the back sent as the front
        service.enrol_with_card(
            tenant, external_ref="u3", consent=consent, id_card_front=_back(painter, person)
        )
    assert err.value.code is ErrorCode.IDCARD_UNREADABLE
    assert err.value.detail["side"] == "front"
    with pytest.raises(InputError):  # a selfie, not a card
        service.enrol_with_card(
            tenant, external_ref="u3", consent=consent, id_card_front=recording.still_frame()
        )
    with pytest.raises((InputError, FaceError)):  # not an image at all
        service.enrol_with_card(
            tenant, external_ref="u3", consent=consent, id_card_front=b"\x00not an image"
        )
