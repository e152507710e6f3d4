#!/usr/bin/env bash
# Debian packages that tests drive for real: chromium (tests/browser) and nginx (tests/test_nginx.py, in front of
# gunicorn with the site file from deploy/). Called by `make test`. Installs only through apt-get, as root, and
# never starts a packaged service; without root a test whose package is missing skips itself and says why.
set -euo pipefail

missing=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing+=(chromium)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "install-test-packages: installing Debian's ${missing[*]} for the tests..."
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        # The tests run their own nginx on free ports; the package must not start one on port 80.
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    exit 0
fi

echo "install-test-packages: ${missing[*]} not installed, and cannot be installed here (needs root and apt-get)." >&2
echo "install-test-packages: the tests that need them will be skipped. To run them: sudo apt-get install ${missing[*]}" >&2
exit 0
