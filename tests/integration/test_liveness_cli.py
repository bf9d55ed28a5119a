"""``shiren liveness challenge|check`` end to end, in a subprocess like a lender's script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import MINIFAS_DIR, REAL_MOV, require

NOW = 1_800_000_000.0


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHIREN_MINIFASNET_DIR": str(MINIFAS_DIR)}
    return subprocess.run(
        [sys.executable, "-m", "shiren.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )


def test_seeded_challenge_is_reproducible_json() -> None:
    a = run("liveness", "challenge", "--seed", "5", "--now", str(NOW), "--json")
    b = run("liveness", "challenge", "--seed", "5", "--now", str(NOW), "--json")
    assert a.returncode == 0, a.stderr
    assert a.stdout == b.stdout
    ch = json.loads(a.stdout)
    assert {"nonce", "actions", "colours", "expires_at", "signature"} <= set(ch)
    assert ch["signature"] is None  # no key configured


def test_signed_challenge_with_a_key(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_bytes(b"k" * 32)
    out = run("liveness", "challenge", "--seed", "5", "--key-file", str(key), "--json")
    assert len(json.loads(out.stdout)["signature"]) == 64
    short = tmp_path / "short"
    short.write_bytes(b"k")
    bad = run("liveness", "challenge", "--key-file", str(short), "--json")
    assert bad.returncode == 3
    assert json.loads(bad.stdout)["code"] == "config.invalid"


def _challenge(tmp_path: Path) -> Path:
    path = tmp_path / "challenge.json"
    path.write_text(
        json.dumps(
            {
                "nonce": "b" * 32,
                "level": "low",
                "issued_at": NOW,
                "expires_at": NOW + 180,
                "lead_in_ms": 1000,
                "actions": [
                    {"action": "open_mouth", "start_ms": 1000, "end_ms": 3600},
                    {"action": "turn_right", "start_ms": 5600, "end_ms": 8200},
                    {"action": "turn_left", "start_ms": 8300, "end_ms": 10900},
                ],
                "colours": [],
            }
        )
    )
    return path


def test_check_on_the_live_video(tmp_path: Path) -> None:
    require(MINIFAS_DIR)
    video = require(REAL_MOV)
    out = run(
        "liveness",
        "check",
        "--frames",
        str(video),
        "--challenge",
        str(_challenge(tmp_path)),
        "--now",
        str(NOW + 5),
        "--json",
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["passed"] is True, result["reasons"]
    assert set(result["signals"]) == {"challenge", "parallax", "colour", "identity", "passive"}


def test_check_bad_inputs_exit_2_with_codes(tmp_path: Path) -> None:
    challenge = _challenge(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    out = run("liveness", "check", "--frames", str(empty), "--challenge", str(challenge), "--json")
    assert out.returncode == 2
    assert json.loads(out.stdout)["code"] == "input.frames_empty"
    junk = tmp_path / "clip.mp4"
    junk.write_bytes(b"\x00" * 1000)
    out = run("liveness", "check", "--frames", str(junk), "--challenge", str(challenge), "--json")
    assert out.returncode == 2
    assert json.loads(out.stdout)["code"] == "input.video_unreadable"
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    out = run("liveness", "check", "--frames", str(junk), "--challenge", str(bad), "--json")
    assert out.returncode == 2
    assert json.loads(out.stdout)["code"] == "input.challenge_invalid"
