#!/usr/bin/env bash
# The system packages the real-browser tests (tests/e2e) need: Debian's Chromium (driven by the
# Python playwright package with executable_path=/usr/bin/chromium; `playwright install` is never
# run) and ffmpeg (turns the shared videos and photos into the .y4m files Chromium's fake camera
# plays), and a CJK font for the zh-CN page.  Idempotent and fast when both are present: nothing is fetched then.
# Needs root (CI runs as root) or sudo; apt waits for a lock another installer holds.
# Usage: scripts/browser-deps.sh
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
# A CJK font: without one the zh-CN page (and its screenshots) shows empty boxes.
fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-wqy-zenhei)
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "browser-deps: need root to install ${missing[*]} (apt-get install -y ${missing[*]});" \
      "the real-browser tests will be skipped (they fail under CI)" >&2
    [ -n "${CI:-}" ] && exit 1
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
lock=(-o DPkg::Lock::Timeout=600)
$SUDO apt-get "${lock[@]}" update -qq
$SUDO apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "browser-deps: installed ${missing[*]}"
