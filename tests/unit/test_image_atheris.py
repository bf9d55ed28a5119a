"""A bounded coverage-guided fuzz of the image decoder (atheris), issue 7.

``tests/unit/test_image.py`` already fuzzes :func:`decode_image` with hypothesis (random bytes,
magic + random tail, mutated valid images: 900 inputs, not coverage-guided).  This adds
libFuzzer's coverage feedback over shiren's decoder and Pillow's Python parsers
(``tests/fuzz/image_atheris.py``), seeded with the same seven valid images.  Default: 20,000
executions (≈ 6 s here); full length: ``SHIREN_ATHERIS_RUNS=2000000`` (docs/RELIABILITY.md).
"""

from __future__ import annotations

import importlib.util
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_image import SEEDS

RUNS = int(os.environ.get("SHIREN_ATHERIS_RUNS", "20000"))
MAX_S = int(os.environ.get("SHIREN_ATHERIS_MAX_S", str(max(60, RUNS // 500))))
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    importlib.util.find_spec("atheris") is None,
    reason="atheris is installed on Linux x86_64 only (dev extras); hypothesis fuzz still runs",
)
def test_coverage_guided_decoder_fuzz_finds_no_crash(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(SEEDS):
        (corpus / f"seed{i}").write_bytes(seed)
    cmd = [sys.executable, "-m", "tests.fuzz.image_atheris", f"-runs={RUNS}"]
    # A single allocation over 1 GiB is a finding (a bomb past the decoder's limits); the
    # process as a whole may grow by 4 GiB.  libFuzzer reads the *peak* RSS (getrusage), and
    # Linux hands a child the parent's peak across fork/exec: a pytest worker that once held
    # 10 GB made the fuzzer report "out-of-memory" before its first input.  So the limit is
    # counted from what the child inherits (a standalone run inherits ~90 MB).
    inherited_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    cmd += [f"-max_total_time={MAX_S}", "-timeout=10", f"-rss_limit_mb={inherited_mb + 4096}"]
    cmd += ["-malloc_limit_mb=1024"]
    cmd += [f"-artifact_prefix={tmp_path}/", str(corpus)]
    done = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=MAX_S + 120, check=False
    )
    log = done.stdout + done.stderr
    crashes = [p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-"))]
    assert done.returncode == 0, (crashes, log[-3000:])
    assert crashes == []
    executed = re.search(r"Done (\d+) runs", log)
    assert executed, log[-2000:]
    coverage = re.findall(r"cov: (\d+)", log)
    print(f"\natheris: {executed[1]} runs, coverage {coverage[-1] if coverage else '?'} edges")
    assert int(executed[1]) >= min(RUNS, 1000)
