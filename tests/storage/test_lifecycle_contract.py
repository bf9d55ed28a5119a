"""Storage contract for the data-lifecycle operations (memory, SQLite, PostgreSQL): clearing
the candidates of stale pending reviews."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shiren.domain.entities import ReviewOutcome
from shiren.storage.ports import UnitOfWorkFactory, sweep_retention
from tests.storage import builders as b
from tests.storage.conftest import open_backend


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[UnitOfWorkFactory]:
    with open_backend(request.param, tmp_path) as backend:
        yield backend.factory


def test_clear_candidates_before_touches_only_stale_pending_reviews(
    store: UnitOfWorkFactory,
) -> None:
    t1, t2 = b.tenant(), b.tenant()
    reviews = {}
    with store() as uow:
        for t in (t1, t2):
            uow.tenants.add(t)
            s = b.subject(t.id)
            uow.subjects.add(s)
            sess = b.session(t.id, s.id)
            uow.sessions.add(sess)
            for name, created in (("old", b.at(0)), ("new", b.at(100)), ("closed", b.at(0))):
                c = b.check(t.id, sess.id, s.id)
                uow.checks.add(c)
                r = b.review(
                    t.id, c.id, created_at=created, candidate_enc=b"\x01cand" + name.encode()
                )
                uow.reviews.add(r)
                reviews[(t.id, name)] = r.id
        uow.reviews.close(
            t1.id,
            reviews[(t1.id, "closed")],
            reviewer="a",
            outcome=ReviewOutcome.REJECTED,
            at=b.at(5),
        )
        uow.commit()
    with store() as uow:
        counts = sweep_retention(uow, b.at(200), tenant_id=t1.id, candidates_before=b.at(50))
        uow.commit()
    assert counts.review_candidates == 1
    with store() as uow:
        left = {
            key: uow.reviews.get(key[0], rid).candidate_enc is not None  # type: ignore[union-attr]
            for key, rid in reviews.items()
        }
    assert left == {
        (t1.id, "old"): False,
        (t1.id, "new"): True,
        (t1.id, "closed"): False,  # closing cleared it already
        (t2.id, "old"): True,  # another tenant: untouched by a tenant-scoped sweep
        (t2.id, "new"): True,
        (t2.id, "closed"): True,
    }
    with store() as uow:
        assert uow.reviews.clear_candidates_before(b.at(50)) == 2  # all tenants: t2's two old
        assert uow.reviews.clear_candidates_before(b.at(50)) == 0
        uow.commit()
    with store() as uow:  # without a cutoff the sweep leaves candidates alone
        assert sweep_retention(uow, b.at(10**6)).review_candidates == 0


def test_sealed_fields_scan_by_cursor_and_compare_and_set(store: UnitOfWorkFactory) -> None:
    t1, t2 = b.tenant(webhook_secret_enc=b"\x01secret-1"), b.tenant()
    with store() as uow:
        uow.tenants.add(t1)
        uow.tenants.add(t2)
        subjects = [b.subject(t1.id) for _ in range(5)] + [b.subject(t2.id)]
        for s in subjects:
            uow.subjects.add(s)
        uow.subjects.add(b.subject(t1.id, wrapped_key=None))  # NULL: not listed
        uow.commit()
    mine = sorted(s.id for s in subjects[:5])
    with store() as uow:
        seen, after = [], ""
        while page := uow.sealed.scan(t1.id, "subjects", "wrapped_key", after_id=after, limit=2):
            seen += page
            after = page[-1][0]
        assert [row_id for row_id, _ in seen] == mine  # id order, t1 only, no NULLs
        by_id = {s.id: s for s in subjects}
        assert all(blob == by_id[i].wrapped_key for i, blob in seen)
        assert uow.sealed.scan(t1.id, "tenants", "webhook_secret_enc") == [(t1.id, b"\x01secret-1")]
        assert uow.sealed.scan(t2.id, "tenants", "webhook_secret_enc") == []
        target = by_id[mine[0]]
        assert target.wrapped_key is not None
        # compare-and-set: a stale expected value or another tenant changes nothing
        assert not uow.sealed.replace(
            t1.id, "subjects", "wrapped_key", target.id, expected=b"stale", new=b"\x02new"
        )
        assert not uow.sealed.replace(
            t2.id, "subjects", "wrapped_key", target.id, expected=target.wrapped_key, new=b"x"
        )
        assert uow.sealed.replace(
            t1.id, "subjects", "wrapped_key", target.id, expected=target.wrapped_key, new=b"\x02new"
        )
        uow.commit()
    with store() as uow:
        stored = uow.subjects.get(t1.id, target.id)
        assert stored is not None
        assert stored.wrapped_key == b"\x02new"
        assert stored.name_enc == target.name_enc  # only that column
        with pytest.raises(ValueError, match="not a sealed column"):
            uow.sealed.scan(t1.id, "subjects", "external_ref")
