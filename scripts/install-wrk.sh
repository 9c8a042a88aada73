#!/usr/bin/env bash
# Install Debian's `wrk` HTTP load generator for `make bench` (bench/load.py drives it).
#
# Idempotent and quick: exits at once when wrk is on PATH.
set -euo pipefail

if command -v wrk >/dev/null 2>&1; then
    exit 0
fi

# shellcheck source=lib/apt-install.sh
. "$(dirname "$0")/lib/apt-install.sh"
apt_install wrk
