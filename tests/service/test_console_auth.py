"""Console sign-in without HTTP: scrypt hashes, signed session cookies, lock-out and the
``shiren console user add`` command."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shiren.domain.console import ConsoleRole, Permission, allowed
from shiren.errors import ErrorCode, InputError, StateError
from shiren.service.console import make_auth
from shiren.service.console_auth import (
    ConsoleAuth,
    ConsolePolicy,
    SessionCodec,
    SessionToken,
    hash_password,
    verify_password,
)
from shiren.service.keys import ServiceKeys
from shiren.storage.memory import MemoryStore
from shiren.storage.sql import SqlStore, make_engine
from tests.service.fixtures import FakeClock
from tests.storage import builders as b


def test_scrypt_hashes_are_salted_and_verify() -> None:
    one, two = hash_password("correct horse"), hash_password("correct horse")
    assert one != two  # per-user salt
    assert one.startswith("scrypt$16384$8$1$")
    assert verify_password("correct horse", one)
    assert not verify_password("correct horsE", one)
    assert not verify_password("x", "not-a-hash")
    assert not verify_password("x", "bcrypt$1$2$3$AA==$AA==")
    cheap = hash_password("pw", n=2**4, salt=b"0" * 16)  # parameters travel with the hash
    assert verify_password("pw", cheap)


def test_session_cookies_are_signed() -> None:
    codec = SessionCodec(b"k" * 32)
    token = SessionToken("u" * 32, "t" * 32, "s" * 32, 1000.0, 1001.5)
    text = codec.encode(token)
    assert codec.decode(text) == token
    body, mac = text.split(".")
    assert codec.decode(body + "." + mac[:-2] + "AA") is None
    assert SessionCodec(b"j" * 32).decode(text) is None
    for junk in ("", ".", "a.b", "%%%.###", body):
        assert codec.decode(junk) is None
    assert codec.check("csrf", "sid", codec.tag("csrf", "sid"))
    assert not codec.check("csrf", "other", codec.tag("csrf", "sid"))
    assert not codec.check("csrf", "", codec.tag("csrf", ""))


def test_roles() -> None:
    assert allowed(ConsoleRole.REVIEWER, Permission.QUEUE_DECIDE)
    assert not allowed(ConsoleRole.REVIEWER, Permission.AUDIT_VIEW)
    assert not allowed(ConsoleRole.AUDITOR, Permission.QUEUE_DECIDE)
    assert allowed(ConsoleRole.AUDITOR, Permission.DASHBOARD_VIEW)
    # an admin may do everything but look at a borrower's kept keyframes (issue 17)
    assert all(
        allowed(ConsoleRole.ADMIN, p) for p in Permission if p is not Permission.EVIDENCE_VIEW
    )
    assert [r for r in ConsoleRole if allowed(r, Permission.EVIDENCE_VIEW)] == [
        ConsoleRole.REVIEWER
    ]


@pytest.fixture
def auth() -> tuple[ConsoleAuth, FakeClock, str]:
    store = MemoryStore()
    tenant = b.tenant()
    with store() as uow:
        uow.tenants.add(tenant)
        uow.commit()
    clock = FakeClock()
    clock.now = datetime(2026, 12, 1, 8, tzinfo=UTC)
    policy = ConsolePolicy(max_failures=3, lockout_s=600, idle_timeout_s=300)
    return make_auth(store, ServiceKeys.generate(), clock, policy), clock, tenant.id


def test_sign_in_lockout_and_session_lifetime(auth: tuple[ConsoleAuth, FakeClock, str]) -> None:
    console, clock, tenant_id = auth
    user, password = console.create_user(tenant_id, "Rita", "reviewer")
    assert user.username == "rita"
    principal, cookie = console.sign_in(" RITA ", password)
    assert principal.user.id == user.id
    again, refreshed = console.resume(cookie)
    assert again.csrf == principal.csrf
    console.check_csrf(again, principal.csrf)
    with pytest.raises(StateError) as csrf:
        console.check_csrf(again, "nope")
    assert csrf.value.code is ErrorCode.CONSOLE_CSRF_FAILED
    clock.advance(301)
    with pytest.raises(StateError) as idle:
        console.resume(refreshed)
    assert idle.value.code is ErrorCode.CONSOLE_SESSION_EXPIRED
    codes = []
    for _ in range(3):
        with pytest.raises(StateError) as bad:
            console.sign_in("rita", "wrong")
        codes.append(bad.value.code)
    assert codes == [ErrorCode.CONSOLE_SIGN_IN_FAILED] * 2 + [ErrorCode.CONSOLE_LOCKED]
    with pytest.raises(StateError) as locked:
        console.sign_in("rita", password)
    assert locked.value.code is ErrorCode.CONSOLE_LOCKED
    assert locked.value.detail["retry_after_s"] == 601
    clock.advance(601)
    principal, cookie = console.sign_in("rita", password)
    console.sign_out(principal)
    with pytest.raises(StateError):
        console.resume(cookie)
    _, after = console.sign_in("rita", password)  # same instant as the sign-out: still valid
    assert console.resume(after)[0].user.id == user.id


def test_create_user_validates(auth: tuple[ConsoleAuth, FakeClock, str]) -> None:
    console, _, tenant_id = auth
    for name, role in (("a", "reviewer"), ("bad name", "reviewer"), ("ok", "boss")):
        with pytest.raises(InputError):
            console.create_user(tenant_id, name, role)
    with pytest.raises(StateError) as missing:
        console.create_user(b.tenant().id, "ghost", "auditor")
    assert missing.value.code is ErrorCode.RECORD_NOT_FOUND


def test_cli_user_add_prints_a_password_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shiren.cli.main import app

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("SHIREN_DATABASE_URL", db)
    monkeypatch.setenv("SHIREN_ENV", "development")
    for name in ("MASTER_KEY", "AUDIT_KEY", "CHALLENGE_KEY", "KEYS_FILE"):
        monkeypatch.delenv(f"SHIREN_{name}", raising=False)
    runner = CliRunner()
    tenant_id = json.loads(runner.invoke(app, ["tenant", "create", "lender", "--json"]).stdout)[
        "tenant_id"
    ]
    args = ["console", "user", "add", "--tenant", tenant_id, "--role", "auditor", "ann"]
    made = runner.invoke(app, args)
    assert made.exit_code == 0, made.output
    password = made.stdout.split("securely): ")[1].strip()
    store = SqlStore(make_engine(db))
    with store() as uow:
        user = uow.console_users.get_by_username("ann")
    assert user is not None
    assert user.role is ConsoleRole.AUDITOR
    assert password not in user.password_hash
    assert verify_password(password, user.password_hash)
    dup = runner.invoke(app, [*args[:-1], "ann"])
    assert dup.exit_code != 0
    bad_role = runner.invoke(
        app, ["console", "user", "add", "--tenant", tenant_id, "--role", "x", "z1"]
    )
    assert bad_role.exit_code == 2
