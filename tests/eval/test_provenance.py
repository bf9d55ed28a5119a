"""Provenance records and the strict JSON writer."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from shiren.errors import ErrorCode
from shiren.eval.provenance import git_dirty, git_sha, package_versions, provenance, write_json


def test_provenance_outside_a_repository(tmp_path: Path) -> None:
    record = provenance({"threshold": 0.5}, [{"name": "sface", "sha256": "ab" * 32}], repo=tmp_path)
    assert record["git"] == {"sha": "unknown", "dirty": None}
    assert record["settings"] == {"threshold": 0.5}
    assert record["models"] == [{"name": "sface", "sha256": "ab" * 32}]
    stamp = dt.datetime.fromisoformat(str(record["timestamp_utc"]))
    assert stamp.utcoffset() == dt.timedelta(0)
    assert isinstance(record["python"], str)
    assert isinstance(record["platform"], str)
    packages = record["packages"]
    assert isinstance(packages, dict)
    assert packages["numpy"] == np.__version__
    assert set(packages) >= {"numpy", "onnxruntime", "mediapipe", "dlib", "opencv"}


def test_package_versions_do_not_import_heavy_modules() -> None:
    import sys

    heavy = ("onnxruntime", "mediapipe", "dlib", "cv2")
    before = {name for name in heavy if name in sys.modules}
    package_versions()
    assert {name for name in heavy if name in sys.modules} == before


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_sha_and_dirty_flag(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    assert git_sha(tmp_path) == "unknown"  # no commit yet
    (tmp_path / "a.txt").write_text("one")
    git("add", "a.txt")
    git("commit", "-q", "-m", "first")
    sha = git_sha(tmp_path)
    assert len(sha) == 40
    assert int(sha, 16) >= 0
    assert git_dirty(tmp_path) is False
    (tmp_path / "untracked.txt").write_text("ignored by the dirty flag")
    assert git_dirty(tmp_path) is False
    (tmp_path / "a.txt").write_text("two")
    assert git_dirty(tmp_path) is True


@dataclasses.dataclass
class _Row:
    name: str
    value: float
    ci: tuple[float, float]


def test_write_json_is_strict_and_sorted(tmp_path: Path) -> None:
    obj = {
        "b": [math.nan, math.inf, -math.inf, 1.5],
        "a": {"名字": "女性", "path": tmp_path, "code": ErrorCode.INPUT_INVALID},
        "c": np.array([1, 2]),
        "d": np.float32(0.25),
        "e": _Row("x", math.inf, (0.0, math.nan)),
        "f": {3, 1, 2},
    }
    path = write_json(tmp_path / "out" / "report.json", obj)
    text = path.read_text(encoding="utf-8")
    assert "名字" in text  # ensure_ascii=False
    assert "NaN" not in text
    assert "Infinity" not in text
    assert text.index('"a"') < text.index('"b"') < text.index('"c"')
    assert text.endswith("}\n")
    loaded = json.loads(text)
    assert loaded["b"] == [None, None, None, 1.5]
    assert loaded["a"] == {"名字": "女性", "path": str(tmp_path), "code": "input.invalid"}
    assert loaded["c"] == [1, 2]
    assert loaded["d"] == 0.25
    assert loaded["e"] == {"name": "x", "value": None, "ci": [0.0, None]}
    assert loaded["f"] == [1, 2, 3]
    assert not list(path.parent.glob(".*.tmp"))


def test_write_json_refuses_unknown_types(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="object"):
        write_json(tmp_path / "x.json", {"x": object()})
