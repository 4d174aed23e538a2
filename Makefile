# OpenFunnels — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CHROMIUM ?= /usr/bin/chromium

.DEFAULT_GOAL := help
.PHONY: help run test lint fmt bench migrate shell services-stop chromium apitoken

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11+ is needed: sudo apt-get install python3.11 python3.11-venv"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || \
		{ echo "Cannot create a venv. Fix: sudo apt-get install python3-venv"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

chromium: ## Install Debian's Chromium (browser tests), caddy and nginx (proxy/edge tests) when missing
	@test -x $(CHROMIUM) || { \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else \
			echo "Chromium is needed for the browser tests. Run: sudo apt-get install -y chromium"; exit 1; \
		fi; }
	@command -v caddy >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq caddy || true; \
		else \
			echo "Optional: sudo apt-get install -y caddy (runs the proxy test)"; \
		fi; }
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { \
		if [ "$$(id -u)" = 0 ]; then \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx || true; \
		else \
			echo "Optional: sudo apt-get install -y nginx (runs the edge tests)"; \
		fi; }

run: $(VENV)/.installed ## Run the app, a Celery worker and beat (local Postgres/Redis if no URLs set)
	$(PY) scripts/run.py

test: $(VENV)/.installed chromium ## Run the whole test suite, browser tests included
	$(PY) scripts/devservices.py exec -- $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed ## Lint, check formatting, the app layers (import-linter) and types (mypy)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy

fmt: $(VENV)/.installed ## Fix lint findings and format the code
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: $(VENV)/.installed ## Apply migrations to the configured or local database
	$(PY) scripts/devservices.py exec -- $(PY) manage.py migrate

bench: $(VENV)/.installed ## Run every benchmark in bench/ and print their figures
	@for b in bench/[!_]*.py; do echo "== $$b"; $(PY) scripts/devservices.py exec -- $(PY) $$b || exit 1; done

apitoken: $(VENV)/.installed ## Print a new read-write API token: make apitoken WORKSPACE=<slug> NAME=<name>
	@test -n "$(WORKSPACE)" -a -n "$(NAME)" || { echo "Usage: make apitoken WORKSPACE=<slug> NAME=<name>"; exit 2; }
	@$(PY) scripts/devservices.py exec -- $(PY) manage.py apitoken create --workspace "$(WORKSPACE)" --name "$(NAME)"

shell: $(VENV)/.installed ## Django shell against the configured or local database
	$(PY) scripts/devservices.py exec -- $(PY) manage.py shell

services-stop: ## Stop the project-local PostgreSQL and Redis
	$(PY) scripts/devservices.py stop
