#!/usr/bin/env bash
# The step-up load test of docs/LOAD.md, end to end, on SQLite and on PostgreSQL:
# a throwaway database, a tenant, `shiren serve --workers 2`, scripts/load_stepup.py against it,
# then everything stopped and dropped.  Prints one JSON report per store and writes them to OUT.
#
#   scripts/load_run.sh [OUT_DIR] [extra load_stepup.py args…]
#   e.g. scripts/load_run.sh /tmp/load --subjects 60 --duration 120
#        scripts/load_run.sh /tmp/load --pace none --duration 60      # capacity (closed loop)
#
# Needs the MiniFASNet folder (SHIREN_MINIFASNET_DIR; `make` sets it) and ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/shiren-load}
shift || true
mkdir -p "$OUT"
BIN=.venv/bin
export SHIREN_MINIFASNET_DIR=${SHIREN_MINIFASNET_DIR:-$(realpath ../shared/models/minifasnet)}
PG_ADMIN=${SHIREN_LOAD_PG:-postgresql://postgres@127.0.0.1:5432/postgres}
PG_DB=shiren_load_$$

run_one() {  # $1 = label, $2 = database URL, $3 = port
  local label=$1 url=$2 port=$3 key pid
  shift 3
  export SHIREN_DATABASE_URL=$url
  key=$($BIN/shiren tenant create "load-$label" --json | python3 -c 'import json,sys;print(json.load(sys.stdin)["api_key"])')
  $BIN/shiren serve --workers 2 --port "$port" > "$OUT/server_$label.log" 2>&1 &
  pid=$!
  for _ in $(seq 120); do
    curl -fsS "http://127.0.0.1:$port/readyz" > /dev/null 2>&1 && break
    sleep 0.5
  done
  $BIN/python scripts/load_stepup.py --base-url "http://127.0.0.1:$port" --api-key "$key" \
    --out "$OUT/$label.json" "$@" || true
  kill "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
}

rm -rf "$OUT/sqlite"
mkdir -p "$OUT/sqlite"
run_one sqlite "sqlite:///$OUT/sqlite/shiren.db" 8011 "$@"

psql "$PG_ADMIN" -qc "CREATE DATABASE $PG_DB"
trap 'psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)"' EXIT
run_one postgresql "postgresql+psycopg://postgres@127.0.0.1:5432/$PG_DB" 8012 "$@"
echo "reports: $OUT/sqlite.json $OUT/postgresql.json" >&2
