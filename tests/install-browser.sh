#!/usr/bin/env bash
# Make Debian's Chromium available for the browser tests (tests/browser). Called by `make test`.
# Installs only through apt; without root the browser tests skip themselves.
set -euo pipefail

if command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: installing Debian's chromium for the browser tests..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    exit 0
fi

echo "install-browser: chromium is not installed and cannot be installed here (needs root and apt-get)." >&2
echo "install-browser: the browser tests will be skipped. To run them: sudo apt-get install chromium" >&2
exit 0
