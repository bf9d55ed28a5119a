"""``shiren calibrate --gallery --tenant ID`` through typer's runner, on a SQLite database set up
by the same ``SHIREN_*`` settings (fake models: ``Engine.load`` is replaced)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shiren.service.app import Engine
from shiren.service.bootstrap import build_service
from shiren.service.settings import load_settings
from tests.service.gallery_support import FAKE_THRESHOLD, bind_face, fake_engine, random_faces


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from shiren.cli.main import app

    monkeypatch.setenv("SHIREN_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("SHIREN_ENV", "development")
    for name in ("MASTER_KEY", "AUDIT_KEY", "CHALLENGE_KEY", "KEYS_FILE", "REDIS_URL"):
        monkeypatch.delenv(f"SHIREN_{name}", raising=False)
    monkeypatch.setattr(Engine, "load", classmethod(lambda cls, settings=None: fake_engine()))
    return app


def _gallery(n: int) -> str:
    """A tenant with ``n`` enrolled faces (the last two the same face) in the CLI's database."""
    service = build_service(load_settings())
    tenant, _ = service.create_tenant("lender")
    faces = random_faces(n, seed=21)
    faces[-1] = faces[-2] * 0.5
    for face in faces:
        bind_face(service, tenant, face, datetime.now(UTC))
    return tenant.id


def test_calibrate_gallery_json(cli: Any) -> None:
    tenant_id = _gallery(60)
    args = ["calibrate", "--gallery", "--tenant", tenant_id, "--target-fmr", "1e-2", "--json"]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    rep = result["report"]
    assert result["n_subjects"] == 60
    assert result["threshold"] == FAKE_THRESHOLD
    assert rep["n_pairs_possible"] == 60 * 59 // 2
    assert rep["n_probable_duplicates_excluded"] == 1
    assert rep["n_pairs_used"] == 60 * 59 // 2 - 1
    assert rep["current"]["threshold"] == FAKE_THRESHOLD
    assert [p["target_fmr"] for p in rep["proposals"]] == [1e-2]
    assert rep["proposals"][0]["insufficient"] is False  # 1,769 pairs >= 300


def test_calibrate_gallery_text(cli: Any) -> None:
    tenant_id = _gallery(60)
    out = CliRunner().invoke(cli, ["calibrate", "--gallery", "--tenant", tenant_id])
    assert out.exit_code == 0, out.output
    text = out.stdout
    assert "60 enrolled subjects" in text
    assert "pairs: all 1,770; 1 probable duplicates excluded" in text
    assert "1 probable duplicates excluded" in text
    assert f"current threshold {FAKE_THRESHOLD:.4f}: FMR" in text
    assert "target FMR 0.001: insufficient (needs >= 3,000 pairs)" in text
    assert "target FMR 0.0001: insufficient (needs >= 30,000 pairs)" in text


def test_calibrate_gallery_needs_a_known_tenant(cli: Any) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["calibrate", "--gallery"])
    assert missing.exit_code == 2
    unknown = runner.invoke(cli, ["calibrate", "--gallery", "--tenant", "0" * 32, "--json"])
    assert unknown.exit_code == 3, unknown.output
    assert json.loads(unknown.stdout)["error"]["code"] == "record.not_found"
    bad = runner.invoke(cli, ["calibrate", "--gallery", "--tenant", "x", "--target-fmr", "2"])
    assert bad.exit_code == 2


def test_calibrate_without_pairs_or_gallery_is_a_usage_error(cli: Any) -> None:
    out = CliRunner().invoke(cli, ["calibrate"])
    assert out.exit_code == 2
    assert "--gallery" in out.output
