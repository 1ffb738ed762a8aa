#!/usr/bin/env bash
# Debian's Chromium for the browser tests (no test tool may download a browser of its own here).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "browser: chromium is missing; install Debian's chromium package (apt-get install chromium)" >&2
  exit 1
fi
echo "browser: installing Debian's chromium"
apt-get update -qq >/dev/null
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
