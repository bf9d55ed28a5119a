#!/usr/bin/env bash
# The mixed load test of docs/RELIABILITY.md "Load", end to end: a fresh PostgreSQL database
# (system server, dropped afterwards), a private redis-server (free port, temp dir, no
# persistence), `shiren serve --workers W` on them, scripts/load_mixed.py against it (niced),
# then `shiren audit verify`, everything stopped and removed.  Writes OUT/mixed.json and the logs.
#
#   scripts/load_mixed.sh [OUT_DIR] [load_mixed.py args…]
#   e.g. scripts/load_mixed.sh /tmp/mixed --rate 2 --duration 600 --subjects 80   # the 10 min run
#        scripts/load_mixed.sh /tmp/ramp --rate 3 --duration 90 --subjects 20     # a ramp step
#   SHIREN_LOAD_WORKERS=3 (default 2)  SHIREN_LOAD_PG=postgresql://…/postgres (admin URL)
#
# Needs the MiniFASNet folder (SHIREN_MINIFASNET_DIR; `make` sets it), ../shared/data and
# redis-server on the PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-/tmp/shiren-mixed}
shift || true
mkdir -p "$OUT"
BIN=${SHIREN_BIN:-.venv/bin}
export SHIREN_MINIFASNET_DIR=${SHIREN_MINIFASNET_DIR:-$(realpath ../shared/models/minifasnet)}
PG_ADMIN=${SHIREN_LOAD_PG:-postgresql://postgres@127.0.0.1:5432/postgres}
WORKERS=${SHIREN_LOAD_WORKERS:-2}
PG_DB=shiren_mixed_$$
free_port() { $BIN/python -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
key() { $BIN/python -c 'import base64,secrets;print(base64.b64encode(secrets.token_bytes(32)).decode())'; }

REDIS_DIR=$(mktemp -d)
REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$REDIS_DIR" \
  > "$OUT/redis.log" 2>&1 &
REDIS_PID=$!
SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2> /dev/null && wait "$SERVER_PID" 2> /dev/null
  kill "$REDIS_PID" 2> /dev/null || true
  rm -rf "$REDIS_DIR"
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" || true
}
trap cleanup EXIT
psql "$PG_ADMIN" -qc "CREATE DATABASE $PG_DB"

export SHIREN_DATABASE_URL="postgresql+psycopg://${PG_ADMIN#postgresql://}"
export SHIREN_DATABASE_URL="${SHIREN_DATABASE_URL%/*}/$PG_DB"
export SHIREN_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export SHIREN_MASTER_KEY=$(key) SHIREN_AUDIT_KEY=$(key) SHIREN_CHALLENGE_KEY=$(key)
export SHIREN_LOG_LEVEL=${SHIREN_LOG_LEVEL:-WARNING}
API_KEY=$($BIN/shiren tenant create load-mixed --json | $BIN/python -c 'import json,sys;print(json.load(sys.stdin)["api_key"])')
PORT=$(free_port)
$BIN/shiren serve --workers "$WORKERS" --port "$PORT" > "$OUT/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 240); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" > /dev/null 2>&1 && break
  sleep 0.5
done
uptime > "$OUT/uptime_before.txt"
/usr/bin/time -v $BIN/python scripts/load_mixed.py --base-url "http://127.0.0.1:$PORT" \
  --api-key "$API_KEY" --server-pid "$SERVER_PID" --out "$OUT/mixed.json" "$@" \
  2> "$OUT/generator.log"
uptime > "$OUT/uptime_after.txt"
$BIN/shiren audit verify --json > "$OUT/audit_verify.json"
echo "report: $OUT/mixed.json  audit: $OUT/audit_verify.json" >&2
