#!/usr/bin/env bash
# Make the pgvector extension available to the local PostgreSQL server (the server-backed face
# index, shiren.fraud.pgvector, needs it).  Idempotent: does nothing when `vector` is already
# available.  Usage: scripts/install_pgvector.sh   (root; PG_CONFIG to pick another server)
#
# Debian bookworm ships PostgreSQL 15 but no pgvector package (trixie has postgresql-17-pgvector
# only), so this builds Debian's own pgvector source package (trixie, 0.8.0) against the local
# server headers: `apt-get source` through temporary, private apt lists (the machine's sources are
# left untouched), PGXS `make install`, portable flags (no -march=native).  Where the distribution
# has a binary package (postgresql-NN-pgvector) it is installed instead.
set -euo pipefail

PSQL=${PSQL:-psql -h 127.0.0.1 -U postgres -d postgres}
PG_CONFIG=${PG_CONFIG:-$(ls -d /usr/lib/postgresql/*/bin/pg_config 2>/dev/null | sort -V | tail -1)}
available() {
  [ -n "$PG_CONFIG" ] && [ -f "$("$PG_CONFIG" --sharedir)/extension/vector.control" ]
}
if available; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install_pgvector: the vector extension is missing and installing it needs root" >&2
  exit 1
fi
major=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
export DEBIAN_FRONTEND=noninteractive
APT=(apt-get -q -y -o DPkg::Lock::Timeout=600)
"${APT[@]}" update >/dev/null
if apt-cache show "postgresql-$major-pgvector" >/dev/null 2>&1; then
  "${APT[@]}" install "postgresql-$major-pgvector" >/dev/null
  available && exit 0
fi
"${APT[@]}" install "postgresql-server-dev-$major" gcc make >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial"
echo "deb-src http://deb.debian.org/debian trixie main" > "$work/sources.list"
OPTS=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-"
      -o "Dir::State::Lists=$work/lists")
apt-get -q "${OPTS[@]}" update >/dev/null
(cd "$work" && apt-get -q "${OPTS[@]}" source --download-only pgvector >/dev/null 2>&1)
tar -xzf "$work"/pgvector_*.orig.tar.gz -C "$work"
make -s -C "$work"/pgvector-*/ PG_CONFIG="$PG_CONFIG" OPTFLAGS="" >/dev/null
make -s -C "$work"/pgvector-*/ PG_CONFIG="$PG_CONFIG" OPTFLAGS="" install >/dev/null
available
echo "install_pgvector: built pgvector from Debian's source package for PostgreSQL $major"
