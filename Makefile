# Image Factory on Airflow — every entry point a user or CI needs.
# Each target bootstraps what it needs (.venv, node_modules) and is fast when they are already there.

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CONFIG ?= Configuration
WORLD ?= emulator/worlds/demo.json
PYTEST_ARGS ?=
EXECUTOR ?= local
DATABASE ?= postgres
# The stacks need Debian's PostgreSQL server unless they run LocalExecutor on SQLite (DATABASE=sqlite).
PG_SERVER := $(if $(and $(filter sqlite,$(DATABASE)),$(filter local,$(EXECUTOR))),,postgres)

.PHONY: help bootstrap browser postgres test weeks test-unit lint validate image-list demo up emulator bench bench-full test-celery drills demo-build demo-retention clean

help:
	@echo "make demo      run the image factory end to end on the local Azure"
	@echo "make demo-build  a build night: the factory VMs made from GoldenImages/, captured, distributed, cleaned"
	@echo "make test      run every test (lint included)"
	@echo "make validate  check ./Configuration (CONFIG=<dir> for another folder)"
	@echo "make image-list  which image versions every lab holds, and who made them (JSON=1 for JSON)"
	@echo "make lint      ruff + mypy"
	@echo "make up        start the local Azure + Airflow and keep them running (UI on 127.0.0.1:28080)"
	@echo "               (DATABASE=sqlite: no PostgreSQL, but no backfill that reprocesses runs; EXECUTOR=celery)"
	@echo "make emulator  start the local Azure on its own (WORLD=<file>)"
	@echo "make bench     benchmarks, quick subset (bench-full: all); figures in bench/RESULTS.md"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

bootstrap: $(VENV)/.installed node_modules/.installed

# Debian's chromium, which Playwright drives for the UI checks (Playwright's own browser download is not used).
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# Debian's PostgreSQL server binaries (initdb, pg_ctl): stack/services.py runs a private cluster from them as the
# metadata DB of every stack but DATABASE=sqlite. Debian never starts its own cluster here; we do not use it.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }

validate: $(VENV)/.installed
	PYTHONPATH=plugins $(PY) -m image_factory.configuration $(CONFIG)

# Reads Azure on the Airflow connections (e.g. AIRFLOW_CONN_IMAGE_FACTORY_ARM / _STORAGE); changes nothing.
image-list: $(VENV)/.installed
	PYTHONPATH=plugins $(PY) -m image_factory.image_list --config $(CONFIG) $(if $(JSON),--json)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check dags plugins emulator stack tests bench
	$(VENV)/bin/ruff format --check dags plugins emulator stack tests bench
	$(VENV)/bin/mypy plugins/image_factory emulator stack

test: bootstrap browser postgres lint
	$(VENV)/bin/pytest -m "not drill and not celery and not weeks" $(PYTEST_ARGS)

test-celery: bootstrap postgres
	$(VENV)/bin/pytest -m celery tests/e2e/test_celery.py $(PYTEST_ARGS)

drills: bootstrap postgres
	$(VENV)/bin/pytest -m drill $(PYTEST_ARGS)

# The factory over simulated nights: on the real processes and with dag.test() (about 20 minutes); result in
# tests/e2e/WEEKS-RESULTS.md.
weeks: bootstrap postgres
	$(VENV)/bin/pytest -m weeks $(PYTEST_ARGS)

test-unit: $(VENV)/.installed
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

bench: bootstrap postgres
	$(PY) -m bench quick

bench-full: bootstrap postgres
	$(PY) -m bench full

emulator: bootstrap
	$(PY) -m emulator serve --world $(WORLD)

demo: bootstrap $(PG_SERVER)
	$(PY) -m stack demo --executor $(EXECUTOR) --database $(DATABASE)

demo-build: bootstrap postgres
	$(PY) -m stack demo-build --executor $(EXECUTOR)

demo-retention: bootstrap postgres
	$(PY) -m stack demo-retention --executor $(EXECUTOR)

up: bootstrap $(PG_SERVER)
	$(PY) -m stack up --executor $(EXECUTOR) --database $(DATABASE)

clean:
	rm -rf .run .pytest_cache .mypy_cache .ruff_cache
