#!/usr/bin/env bash
# Make sure Debian's chromium is at /usr/bin/chromium: the dashboard's browser test
# (tests/integration/test_dashboard_browser.py) renders the page with it, headless.
# Idempotent: does nothing when it is already there. Installs it only as root with
# apt-get; anywhere else it says what to install and fails, so `make test` stops
# with a clear reason instead of the browser test failing later.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium (Debian package) for the dashboard browser test" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium
    test -x "$CHROMIUM" || { echo "chromium was installed but $CHROMIUM is missing" >&2; exit 1; }
    exit 0
fi

cat >&2 <<MSG
The dashboard browser test needs Chromium at $CHROMIUM.
Install Debian's chromium package, e.g.:  sudo apt-get install chromium
(or run tools/ensure_chromium.sh as root on a Debian/Ubuntu system).
MSG
exit 1
