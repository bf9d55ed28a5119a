"""``shiren idcard read`` through typer's runner with the real models: a rendered card (text and
JSON), a non-image (exit 2 with the typed error), a missing file."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from shiren.cli.main import app

from .cards import Front, photograph, render_front

CARD = Front(number="110105199003071239")


def _photo(tmp_path: Path) -> Path:
    path = tmp_path / "card.jpg"
    Image.fromarray(photograph(render_front(CARD))).save(path, quality=92)
    return path


def test_read_a_rendered_card(tmp_path: Path) -> None:
    path = _photo(tmp_path)
    portrait = tmp_path / "portrait.png"
    args = ["idcard", "read", str(path), "--expect-id", "32010219880811051X", "--json"]
    out = CliRunner().invoke(app, [*args, "--lang", "en", "--portrait-out", str(portrait)])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["side"] == "front"
    fields = {name: field["value"] for name, field in result["fields"].items()}
    assert fields["id_number"] == CARD.number
    assert fields["name"] == CARD.name
    assert fields["birth_date"] == "1990-03-07"
    checks = {check["code"]: check["passed"] for check in result["checks"]}
    assert checks["idcard.number_invalid"] is True
    assert checks["idcard.number_mismatch"] is False
    assert result["guidance"] == []
    assert len(result["corners"]) == 4
    assert "portrait" not in result
    assert portrait.exists() == result["portrait_found"]


def test_read_prints_fields_checks_and_portrait(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["idcard", "read", str(_photo(tmp_path)), "--lang", "en"])
    assert out.exit_code == 0, out.output
    assert "side: front" in out.stdout
    assert CARD.number in out.stdout  # the operator's tool masks nothing
    assert "PASS  idcard.number_invalid" in out.stdout
    assert "N/A   idcard.number_mismatch" in out.stdout
    assert "portrait: " in out.stdout


def test_a_non_image_exits_2_with_the_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "card.jpg"
    path.write_bytes(b"%PDF-1.7\nnot an image at all")
    out = CliRunner().invoke(app, ["idcard", "read", str(path), "--json"])
    assert out.exit_code == 2
    assert json.loads(out.stdout)["code"] == "input.image_unsupported_format"


def test_a_missing_file_exits_2(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["idcard", "read", str(tmp_path / "absent.jpg"), "--json"])
    assert out.exit_code == 2
    assert json.loads(out.stdout)["code"] == "input.file_not_found"


def test_a_bad_side_is_a_usage_error(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["idcard", "read", str(_photo(tmp_path)), "--side", "top"])
    assert out.exit_code == 2
