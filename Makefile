# One entry point for developers and CI. Every target installs what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin

export DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/payouts
export AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/

.PHONY: help install run run-api run-processor migrate makemigrations test test-unit lint fmt clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml libs/payout_core/pyproject.toml services/api/pyproject.toml services/processor/pyproject.toml
	$(UV) sync --frozen --all-packages
	@touch $@

install: $(VENV)/.synced ## create .venv from uv.lock

run: install ## create the database, migrate, start API + processor (Ctrl-C stops both)
	@scripts/run-local.sh

run-api: install ## start only the API (payout-api)
	$(BIN)/payout-api

run-processor: install ## start only the processor (payout-processor)
	$(BIN)/payout-processor

migrate: install ## create the database if missing and apply Alembic migrations
	$(BIN)/payout-admin migrate

makemigrations: install ## autogenerate a migration: make makemigrations m="what changed"
	$(BIN)/alembic -c alembic.ini revision --autogenerate -m "$(m)"

test: install system-deps ## the whole suite on the local PostgreSQL and RabbitMQ (own database and vhost)
	$(BIN)/pytest

test-unit: install ## unit tests only (no services needed)
	$(BIN)/pytest tests/unit

lint: install ## ruff
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install ## ruff format + autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: ## remove the virtual environments
	rm -rf $(VENV) .tools

# --- system packages the tests need (each install script is idempotent and quick when done) ---
.PHONY: system-deps
system-deps: ## install promtool/prometheus (Debian) and other system tools the tests use
	@scripts/install-prometheus.sh >/dev/null

# --- observability: deploy/observability/ is the source, the Helm chart ships byte-identical copies ---
OBSERVABILITY_FILES := grafana-dashboard.json alert-rules.yaml
HELM_FILES_DIR := deploy/helm/payout-service/files
.PHONY: observability-sync
observability-sync: ## copy the Grafana dashboard and alert rules into the Helm chart's files/
	@mkdir -p $(HELM_FILES_DIR)
	@for f in $(OBSERVABILITY_FILES); do cp deploy/observability/$$f $(HELM_FILES_DIR)/$$f; done
	@echo "synced $(OBSERVABILITY_FILES) into $(HELM_FILES_DIR)"
