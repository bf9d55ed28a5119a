"""Real processes for the fault tests (docs/RELIABILITY.md "Faults"): a private PostgreSQL
cluster and a private redis-server (never the system ones: CI and other work use them),
``shiren serve`` as a subprocess with its workers, and the lender's requests over HTTP.

Everything lives in a temp dir and is stopped by the context managers, even when a test fails.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

import shiren
from tests.conftest import LFW, MINIFAS_DIR, require

SRC = Path(shiren.__file__).resolve().parents[1]
CONSENT = {
    "purpose": "credit_identity_verification",
    "version": "2026-01",
    "text_sha256": "a" * 64,
    "retention_days": 365,
}
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_number(seq: int) -> str:
    """A synthetic GB 11643 number with a valid check digit, distinct per ``seq`` (< 10⁵)."""
    day = 1 + seq % 28
    body = f"110102199{(seq // 28) % 10}01{day:02d}{seq % 1000:03d}"[:17]
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, ID_WEIGHTS, strict=True)) % 11]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_keys() -> dict[str, str]:
    def key() -> str:
        return base64.b64encode(secrets.token_bytes(32)).decode("ascii")

    return {"SHIREN_MASTER_KEY": key(), "SHIREN_AUDIT_KEY": key(), "SHIREN_CHALLENGE_KEY": key()}


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(service_keys())
    env.update(
        {
            "PYTHONPATH": str(SRC),
            "SHIREN_DATABASE_URL": database_url,
            "SHIREN_MINIFASNET_DIR": str(require(MINIFAS_DIR)),
            "SHIREN_LOG_LEVEL": "WARNING",
        }
    )
    env.pop("SHIREN_REDIS_URL", None)
    env.update(extra)
    return env


def cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``shiren …`` (this checkout's code) with ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "shiren.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=check,
    )


def new_tenant(env: dict[str, str], name: str = "faults") -> str:
    out = cli(env, "tenant", "create", name, "--json").stdout
    return str(json.loads(out)["api_key"])


def audit_verify(env: dict[str, str]) -> list[dict[str, Any]]:
    """``shiren audit verify --json``; asserts exit 0 (every chain intact)."""
    done = cli(env, "audit", "verify", "--json", check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    result: list[dict[str, Any]] = json.loads(done.stdout)
    assert result, done.stdout
    assert all(r["ok"] for r in result), result
    return result


def reference_photo() -> bytes:
    return (require(LFW) / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg").read_bytes()


# -- shiren serve -------------------------------------------------------------------------------


class Server:
    """``shiren serve --workers N`` on a free port, started and stopped by the test."""

    def __init__(self, env: dict[str, str], workers: int, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("ab")
        self.log_path = log
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "shiren.cli", "serve"),
                *("--workers", str(workers), "--port", str(self.port)),
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_ready()

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"shiren serve exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError("shiren serve did not become ready")

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes (children of the supervisor)."""
        return [pid for pid in children(self.proc.pid) if "spawn_main" in cmdline(pid)]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def serve(env: dict[str, str], workers: int, log: Path) -> Iterator[Server]:
    server = Server(env, workers, log)
    try:
        yield server
    finally:
        server.stop()


def children(pid: int) -> list[int]:
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.split("/")[2]))
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def pid_of_local_port(port: int, candidates: list[int]) -> int | None:
    """Which of ``candidates`` owns the TCP socket bound locally to ``port`` (/proc, no psutil)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if int(parts[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(parts[9])
    for pid in candidates:
        for fd in glob.glob(f"/proc/{pid}/fd/*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return pid
    return None


# -- private PostgreSQL and Redis ---------------------------------------------------------------


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries (initdb) are required in CI")
        pytest.skip("PostgreSQL server binaries (initdb) are not installed")
    return Path(initdb).parent


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (initdb, trust auth, loopback) on a free port."""

    def __init__(self, root: Path) -> None:
        self.bin = _pg_bin()
        self.root = root
        self.data = root / "pgdata"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the cluster as the postgres user
            self.as_user = ["runuser", "-u", "postgres", "--"]
            shutil.chown(root, "postgres")
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
            "--no-sync",
        )  # fmt: skip

    def _run(self, *cmd: str) -> None:
        done = subprocess.run(
            [*self.as_user, *cmd], check=False, capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"{Path(cmd[0]).name} failed: {done.stderr[-1000:]}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
            str(self.root / "pg.log"), "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        subprocess.run(
            ["psql", self.url().replace("+psycopg", ""), "-qc", f'CREATE DATABASE "{name}"'],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return self.url(name)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A private cluster in its own dir under the system temp dir (the postgres user must be
    able to reach it: pytest's per-user tmp_path is not), removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="shiren-pg-"))
    try:
        pg = PrivatePostgres(root)
        pg.start()
        try:
            yield pg
        finally:
            with suppress(RuntimeError):
                pg.stop("immediate")
    finally:
        shutil.rmtree(root, ignore_errors=True)


class PrivateRedis:
    """A throwaway redis-server (no persistence) on a free port; stop() and start() again."""

    def __init__(self, root: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("redis-server is required in CI")
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.root = root
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--dir", str(self.root)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


@contextmanager
def private_redis(root: Path) -> Iterator[PrivateRedis]:
    root.mkdir(parents=True, exist_ok=True)
    redis = PrivateRedis(root)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


# -- the lender's requests ----------------------------------------------------------------------


def enrol(
    http: httpx.Client, api_key: str, external_ref: str, seq: int, photo: bytes
) -> httpx.Response:
    meta = {
        "external_ref": external_ref,
        "name": "故障测试",
        "id_number": id_number(seq),
        "consent": CONSENT,
        "reference_kind": "id_card",
    }
    return http.post(
        "/v1/subjects",
        headers={"Authorization": f"Bearer {api_key}"},
        data={"meta": json.dumps(meta, ensure_ascii=False)},
        files=[("reference_image", ("reference.jpg", photo, "image/jpeg"))],
    )


def assert_typed_retryable(resp: httpx.Response, codes: set[str]) -> str:
    """A 503 problem+json with one of ``codes`` and a Retry-After: what a client can act on."""
    assert resp.status_code == 503, (resp.status_code, resp.text[:300])
    assert resp.headers["content-type"].startswith("application/problem+json"), resp.headers
    assert resp.headers.get("retry-after", "").isdigit(), resp.headers
    code = str(resp.json()["code"])
    assert code in codes, resp.text[:300]
    return code
