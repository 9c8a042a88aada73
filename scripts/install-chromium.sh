#!/usr/bin/env bash
# Install Debian's `chromium` for the headless browser test of the API docs pages
# (tests/contract/test_docs_browser.py drives /usr/bin/chromium with Playwright).
#
# Idempotent and quick: exits at once when /usr/bin/chromium is there.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

# shellcheck source=lib/apt-install.sh
. "$(dirname "$0")/lib/apt-install.sh"
apt_install chromium

"$CHROMIUM" --version 2>/dev/null # the Debian wrapper warns on stderr about memory sizes
