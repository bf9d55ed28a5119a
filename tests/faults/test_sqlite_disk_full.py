"""Fault 4: the disk of the SQLite mode fills up (docs/RELIABILITY.md "Faults").

The database lives on a small tmpfs of its own (``mount -t tmpfs -o size=…``: needs root or
CAP_SYS_ADMIN; skipped with that reason where mounting is not permitted).  ``shiren serve`` enrols a
few subjects; the log is checkpointed (an empty WAL: the next write must grow a file); a filler
file takes the rest of the space.  Then:

* every write is answered with a typed, retryable ``503 storage.full`` + Retry-After — no 500;
* reads still work (export of an enrolled subject, a session's status);
* after the filler is removed, writes succeed with no restart;
* nothing stored before is lost: ``PRAGMA integrity_check`` is ``ok``, every subject is there,
  the audit chain verifies.
"""

from __future__ import annotations

import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.faults.support import (
    assert_typed_retryable,
    audit_verify,
    base_env,
    enrol,
    new_tenant,
    reference_photo,
    serve,
)

SIZE = "24m"


@contextmanager
def small_disk() -> Iterator[Path]:
    mnt = Path(tempfile.mkdtemp(prefix="shiren-full-"))
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(mnt)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount a tmpfs here (root / CAP_SYS_ADMIN needed): {done.stderr}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        mnt.rmdir()


def fill(path: Path) -> int:
    """Write ``path`` until the file system refuses: the bytes written."""
    written = 0
    block = b"\0" * (64 * 1024)
    with path.open("wb", buffering=0) as f:
        try:
            while True:
                written += f.write(block)
        except OSError:
            pass
        try:
            while True:
                written += f.write(b"\0" * 512)
        except OSError:
            pass
    return written


def test_sqlite_disk_full(tmp_path: Path) -> None:
    photo = reference_photo()
    with small_disk() as disk:
        db = disk / "shiren.db"
        env = base_env(f"sqlite:///{db}")
        key = new_tenant(env)
        auth = {"Authorization": f"Bearer {key}"}
        with (
            serve(env, 1, tmp_path / "server.log") as server,
            httpx.Client(base_url=server.url, timeout=60) as http,
        ):
            before = []
            for i in range(3):
                r = enrol(http, key, f"before-{i}", i, photo)
                assert r.status_code == 201, r.text[:300]
                before.append(r.json())
            with sqlite3.connect(db) as conn:  # an empty WAL: the next write needs new space
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            filler = disk / "filler"
            assert fill(filler) > 0

            for i in range(3):
                full = enrol(http, key, f"during-{i}", 10 + i, photo)
                assert_typed_retryable(full, {"storage.full"})
            event = http.post(
                "/v1/events",
                headers=auth,
                json={"subject_id": before[0]["subject"]["id"], "type": "disbursement",
                      "amount_minor": 5_000_000, "currency": "CNY"},
            )  # fmt: skip
            assert event.status_code in (409, 503), event.text[:300]
            if event.status_code == 503:
                assert_typed_retryable(event, {"storage.full"})
            # reads still work
            for doc in before:
                got = http.get(f"/v1/subjects/{doc['subject']['id']}/export", headers=auth)
                assert got.status_code == 200, got.text[:300]
                s = http.get(f"/v1/sessions/{doc['session']['id']}", headers=auth)
                assert s.status_code == 200, s.text[:300]
            ready = http.get("/readyz")
            assert ready.status_code == 200

            filler.unlink()  # space comes back: no restart, no manual step
            after = enrol(http, key, "after", 20, photo)
            assert after.status_code == 201, after.text[:300]
            again = enrol(http, key, "during-0", 10, photo)  # the refused one, retried
            assert again.status_code == 201, again.text[:300]

        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            refs = {r[0] for r in conn.execute("SELECT external_ref FROM subjects")}
            partial = conn.execute(
                "SELECT count(*) FROM subjects s WHERE NOT EXISTS"
                " (SELECT 1 FROM consents c WHERE c.subject_id = s.id)"
                " OR NOT EXISTS (SELECT 1 FROM subject_references r WHERE r.subject_id = s.id)"
                " OR NOT EXISTS (SELECT 1 FROM sessions x WHERE x.subject_id = s.id)"
            ).fetchone()
        assert refs == {"before-0", "before-1", "before-2", "after", "during-0"}
        assert partial == (0,)
        audit_verify(env)
        assert "Traceback" not in server.log_text()
