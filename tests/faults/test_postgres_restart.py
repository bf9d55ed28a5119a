"""Fault 2: PostgreSQL restarted under load (docs/RELIABILITY.md "Faults").

A private cluster (initdb in a temp dir, free port — the system server is never touched) serves
``shiren serve --workers 2``; two lenders' clients enrol subjects back to back while the cluster
is stopped (``pg_ctl stop -m fast``: open transactions are cut) and started again.  Every answer
must be a 201 or a typed, retryable 503 (``storage.unavailable`` + Retry-After) — no 500, no
dropped connection; after the restart everything works with no manual step (``pool_pre_ping``
replaces the dead pooled connections); every enrolment is whole or absent; the audit chain
verifies.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import psycopg

from tests.faults.support import (
    assert_typed_retryable,
    audit_verify,
    base_env,
    enrol,
    new_tenant,
    private_postgres,
    reference_photo,
    serve,
)

OUTAGE_S = 4.0


def test_postgres_restart_under_load(tmp_path: Path) -> None:
    photo = reference_photo()
    with private_postgres() as pg:
        url = pg.create_database("shiren_faults")
        env = base_env(url)
        key = new_tenant(env)
        with serve(env, 2, tmp_path / "server.log") as server:
            results: list[tuple[str, str, float, httpx.Response | str]] = []
            stop = threading.Event()
            lock = threading.Lock()

            def client(n: int) -> None:
                with httpx.Client(base_url=server.url, timeout=60) as http:
                    i = 0
                    while not stop.is_set():
                        ref = f"c{n}-{i}"
                        try:
                            resp: httpx.Response | str = enrol(http, key, ref, n * 1000 + i, photo)
                        except httpx.TransportError as exc:
                            resp = type(exc).__name__
                        with lock:
                            results.append((ref, "enrol", time.monotonic(), resp))
                        i += 1

            threads = [threading.Thread(target=client, args=(n,)) for n in range(2)]
            for t in threads:
                t.start()
            time.sleep(3.0)
            pg.stop("fast")
            down_at = time.monotonic()
            time.sleep(OUTAGE_S)
            pg.start()
            up_at = time.monotonic()
            time.sleep(6.0)
            stop.set()
            for t in threads:
                t.join(60)

            statuses: Counter[str] = Counter()
            for _, _, _, resp in results:
                if isinstance(resp, str):
                    statuses[f"transport:{resp}"] += 1
                    continue
                statuses[str(resp.status_code)] += 1
                if resp.status_code != 201:
                    assert_typed_retryable(resp, {"storage.unavailable"})
            assert set(statuses) <= {"201", "503"}, statuses
            # a request finishing just as the stop returned may have been served: 1 s margin
            during = [r for r in results if down_at + 1.0 < r[2] < up_at]
            assert during, statuses  # the outage was felt…
            assert all(  # …and answered with typed errors
                not isinstance(r[3], str) and r[3].status_code == 503 for r in during
            ), statuses
            late = [r for r in results if r[2] > up_at + 2.0]
            assert late, statuses
            assert all(  # recovered by itself
                not isinstance(r[3], str) and r[3].status_code == 201 for r in late
            ), statuses
            with httpx.Client(base_url=server.url, timeout=60) as http:  # and retries work
                retried = [
                    r[0] for r in results if not isinstance(r[3], str) and r[3].status_code == 503
                ]
                for n, ref in enumerate(retried[:4]):
                    again = enrol(http, key, ref, 50_000 + n, photo)
                    assert again.status_code in (201, 409), again.text[:200]

        ok_refs = {r[0] for r in results if not isinstance(r[3], str) and r[3].status_code == 201}
        with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
            stored = {row[0] for row in conn.execute("SELECT external_ref FROM subjects")}
            partial = conn.execute(
                "SELECT count(*) FROM subjects s WHERE NOT EXISTS"
                " (SELECT 1 FROM consents c WHERE c.subject_id = s.id)"
                " OR NOT EXISTS (SELECT 1 FROM subject_references r WHERE r.subject_id = s.id)"
                " OR NOT EXISTS (SELECT 1 FROM sessions x WHERE x.subject_id = s.id)"
                " OR NOT EXISTS (SELECT 1 FROM audit_events a WHERE a.subject_id = s.id)"
            ).fetchone()
        assert ok_refs <= stored  # no enrolment a client was told about is lost
        assert partial == (0,)  # none half-written
        audit_verify(env)
        print(f"\nPostgreSQL restart: {dict(statuses)}, {len(during)} requests during the outage")
