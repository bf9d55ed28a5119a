# shiren — one entry point for set-up, the main job and every check.
VENV ?= .venv
BIN := $(VENV)/bin
A ?=
B ?=
# MiniFASNet (passive anti-spoofing) weights ship in no registry: a configured folder, checksum-
# verified.  On this project's machines they sit beside the checkout; set your own path elsewhere.
SHIREN_MINIFASNET_DIR ?= $(wildcard $(abspath ../shared/models/minifasnet))
export SHIREN_MINIFASNET_DIR

.PHONY: setup compare run test check lint typecheck importlint fmt

setup:
	@bash scripts/setup.sh

## The main job (until the service lands): compare two images you name: make run A=a.jpg B=b.jpg
run compare: setup
	@test -n "$(A)" -a -n "$(B)" || { echo "usage: make run A=first.jpg B=second.jpg"; exit 64; }
	$(BIN)/shiren compare "$(A)" "$(B)" --json

## The whole test suite (what CI runs).
test: setup
	$(BIN)/python -m pytest -n 2 --dist loadfile -q

lint: setup
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

typecheck: setup
	$(BIN)/mypy --strict

importlint: setup
	$(BIN)/lint-imports

fmt: setup
	$(BIN)/ruff format src tests scripts
	$(BIN)/ruff check --fix src tests scripts

## Everything a commit must pass.
check: lint typecheck importlint test
