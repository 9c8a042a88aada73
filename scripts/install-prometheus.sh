#!/usr/bin/env bash
# Install promtool and the Prometheus server from Debian's `prometheus` package.
#
# Idempotent and quick: exits at once when promtool and prometheus are already on PATH.
# Never leaves the package's own server running: the tests start their own Prometheus
# on a free port, and a stray one on :9090 would only confuse them.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    exit 0
fi

# shellcheck source=lib/apt-install.sh
. "$(dirname "$0")/lib/apt-install.sh"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# Keep the package's maintainer scripts from starting the service: if the machine
# has no policy-rc.d, put a temporary one in place (101 = action forbidden).
POLICY=/usr/sbin/policy-rc.d
REMOVE_POLICY=0
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod 755 "$POLICY"
    REMOVE_POLICY=1
fi
cleanup() {
    if [ "$REMOVE_POLICY" -eq 1 ]; then
        $SUDO rm -f "$POLICY"
    fi
}
trap cleanup EXIT

apt_install prometheus

# Belt and braces: if a server from the package is listening on :9090 anyway, stop it.
if command -v ss >/dev/null 2>&1; then
    if ss -ltnp 2>/dev/null | grep -E ':9090\b' | grep -q '"prometheus"'; then
        echo "install-prometheus: stopping the packaged prometheus server on :9090" >&2
        $SUDO service prometheus stop >/dev/null 2>&1 || true
        sleep 1
        for pid in $(ss -ltnp 2>/dev/null | grep -E ':9090\b' | grep -oE '"prometheus",pid=[0-9]+' | grep -oE '[0-9]+$' | sort -u); do
            $SUDO kill "$pid" 2>/dev/null || true
        done
    fi
fi

promtool --version 2>&1 | head -n 1
