# shiren — one entry point for set-up, the main job and every check.
VENV ?= .venv
BIN := $(VENV)/bin
A ?=
B ?=
# MiniFASNet (passive anti-spoofing) weights ship in no registry: a configured folder, checksum-
# verified.  On this project's machines they sit beside the checkout; set your own path elsewhere.
SHIREN_MINIFASNET_DIR ?= $(wildcard $(abspath ../shared/models/minifasnet))
export SHIREN_MINIFASNET_DIR

.PHONY: setup browser-deps compare run test check lint typecheck importlint fmt

setup:
	@bash scripts/setup.sh

## Chromium, ffmpeg and a CJK font for the real-browser tests (tests/e2e); a no-op when present.
browser-deps:
	@bash scripts/browser-deps.sh

## The main job: the REST service on embedded defaults (SQLite ./shiren.db, development keys
## generated next to it, models from the installed packages): http://127.0.0.1:8000/docs
HOST ?= 127.0.0.1
PORT ?= 8000
run: setup
	$(BIN)/shiren serve --host $(HOST) --port $(PORT)

## Compare two images you name: make compare A=a.jpg B=b.jpg
compare: setup
	@test -n "$(A)" -a -n "$(B)" || { echo "usage: make compare A=first.jpg B=second.jpg"; exit 64; }
	$(BIN)/shiren compare "$(A)" "$(B)" --json

## The whole test suite (what CI runs), real-browser tests included.
test: setup browser-deps
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

lint: setup
	$(BIN)/ruff check src tests scripts examples
	$(BIN)/ruff format --check src tests scripts examples

typecheck: setup
	$(BIN)/mypy --strict

importlint: setup
	$(BIN)/lint-imports

fmt: setup
	$(BIN)/ruff format src tests scripts examples
	$(BIN)/ruff check --fix src tests scripts examples

## Everything a commit must pass.
check: lint typecheck importlint test
