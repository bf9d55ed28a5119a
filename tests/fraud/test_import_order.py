"""usearch loaded before onnxruntime crashes the process; shiren.fraud.embedded guards it."""

from __future__ import annotations

import subprocess
import sys


def test_fraud_index_then_models_does_not_crash() -> None:
    code = (
        "import shiren.fraud.embedded\n"
        "import onnxruntime\n"
        "from shiren.verifier import Verifier\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
