"""Fault 1: ``kill -9`` of a worker in the middle of an enrolment (docs/RELIABILITY.md "Faults").

Deterministic, with no hook in the service: the test holds the tenant row's audit-chain lock
(``FOR NO KEY UPDATE``, what :meth:`SqlAuditLog.append` takes), so the enrolment stops *inside*
its transaction — subject, consent and reference already inserted, the audit event not yet —
and PostgreSQL shows its backend waiting on the lock.  The worker that owns that backend's
connection is found from the client port (/proc) and killed with SIGKILL.  Then: the enrolment
is absent (not half there), the same request sent again succeeds on the surviving worker, the
supervisor has started a new worker by itself, and the audit chain verifies.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import psycopg

from tests.faults.support import (
    audit_verify,
    base_env,
    enrol,
    new_tenant,
    pid_of_local_port,
    reference_photo,
    serve,
)
from tests.storage.conftest import fresh_pg_database


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def test_kill_worker_mid_enrolment(tmp_path: Path) -> None:
    photo = reference_photo()
    with fresh_pg_database() as url:
        env = base_env(url)
        key = new_tenant(env)
        db = url.rsplit("/", 1)[1]
        with (
            serve(env, 2, tmp_path / "server.log") as server,
            httpx.Client(base_url=server.url, timeout=60) as http,
        ):
            assert enrol(http, key, "before-kill", 1, photo).status_code == 201
            workers = server.worker_pids()
            assert len(workers) == 2, workers

            outcome: dict[str, object] = {}

            def victim() -> None:
                try:
                    with httpx.Client(base_url=server.url, timeout=60) as own:
                        outcome["response"] = enrol(own, key, "killed-mid-enrol", 2, photo)
                except httpx.TransportError as exc:
                    outcome["transport_error"] = type(exc).__name__

            with psycopg.connect(_plain(url), autocommit=False) as lock:
                lock.execute("SELECT id FROM tenants FOR NO KEY UPDATE").fetchall()
                sender = threading.Thread(target=victim)
                sender.start()
                port = None
                deadline = time.monotonic() + 30
                with psycopg.connect(_plain(url), autocommit=True) as watch:
                    while port is None and time.monotonic() < deadline:
                        row = watch.execute(
                            "SELECT client_port FROM pg_stat_activity WHERE datname = %s"
                            " AND wait_event_type = 'Lock' AND state = 'active'",
                            (db,),
                        ).fetchone()
                        port = None if row is None else int(row[0])
                        time.sleep(0.05)
                    assert port is not None, "the enrolment never reached the audit lock"
                    # the enrolment's own writes are in its open transaction, invisible outside
                    victim_pid = pid_of_local_port(port, workers)
                    assert victim_pid is not None
                    os.kill(victim_pid, signal.SIGKILL)
                lock.rollback()  # let the dead worker's backend run on: it finds its client gone
            sender.join(60)
            assert "transport_error" in outcome, outcome  # the connection dropped: no response

            with psycopg.connect(_plain(url), autocommit=True) as conn:
                deadline = time.monotonic() + 30  # the orphaned backend rolls back and exits
                while time.monotonic() < deadline:
                    busy = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                        " AND state LIKE 'idle in transaction%%'",
                        (db,),
                    ).fetchone()
                    if busy is not None and busy[0] == 0:
                        break
                    time.sleep(0.1)
                absent = conn.execute(
                    "SELECT count(*) FROM subjects WHERE external_ref = 'killed-mid-enrol'"
                ).fetchone()
                assert absent == (0,)  # all or nothing: the transaction died with the worker

            again = enrol(http, key, "killed-mid-enrol", 2, photo)  # the lender's retry
            assert again.status_code == 201, again.text[:300]

            deadline = time.monotonic() + 90  # the supervisor replaces the dead worker
            while time.monotonic() < deadline:
                now = server.worker_pids()
                if len(now) == 2 and victim_pid not in now:
                    break
                time.sleep(0.5)
            assert len(now) == 2, now
            assert victim_pid not in now, now
            server.wait_ready()
            for i in range(4):  # both workers serve again (connections spread over them)
                assert enrol(http, key, f"after-kill-{i}", 3 + i, photo).status_code == 201

        with psycopg.connect(_plain(url), autocommit=True) as conn:
            partial = conn.execute(
                "SELECT count(*) FROM subjects s WHERE NOT EXISTS"
                " (SELECT 1 FROM consents c WHERE c.subject_id = s.id)"
                " OR NOT EXISTS (SELECT 1 FROM subject_references r WHERE r.subject_id = s.id)"
                " OR NOT EXISTS (SELECT 1 FROM sessions x WHERE x.subject_id = s.id)"
                " OR NOT EXISTS (SELECT 1 FROM audit_events a WHERE a.subject_id = s.id)"
            ).fetchone()
            total = conn.execute("SELECT count(*) FROM subjects").fetchone()
        assert partial == (0,)
        assert total == (6,)
        audit_verify(env)
        assert "Traceback" not in server.log_text()
