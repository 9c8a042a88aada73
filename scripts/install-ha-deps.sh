#!/usr/bin/env bash
# What `make test-ha` runs: rabbitmq-server (three extra nodes) and PostgreSQL's server tools
# (initdb, pg_ctl, pg_basebackup, via pg_config --bindir), each as its own system user.
#
# Idempotent and quick: exits at once when they are installed (this machine's image has them;
# the test never touches the machine's own RabbitMQ or PostgreSQL servers).
set -euo pipefail

if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] && command -v pg_config >/dev/null 2>&1 \
    && [ -x "$(pg_config --bindir)/pg_basebackup" ] && command -v runuser >/dev/null 2>&1; then
    exit 0
fi

# shellcheck source=lib/apt-install.sh
. "$(dirname "$0")/lib/apt-install.sh"
# `postgresql` brings the server (initdb, pg_ctl) and its client tools (pg_basebackup,
# pg_config); nothing needs the headers of postgresql-server-dev-*.
apt_install rabbitmq-server postgresql util-linux
