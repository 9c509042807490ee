# smalltts: the only wrappers. `make run` and `make test` install what is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# GPU=1 installs onnxruntime-gpu instead of onnxruntime (the two cannot share one environment).
ORT_EXTRA := $(if $(filter 1,$(GPU)),gpu,serve)
STAMP := $(VENV)/.installed-$(ORT_EXTRA)
HOST ?= 127.0.0.1
PORT ?= 8000

# Debian packages: espeak-ng for the phonemizer and speech data, sox for audio tools, postgresql for the
# payment-ledger tests (they start their own throwaway server), chromium for the frontend's browser test.
APT_PACKAGES := espeak-ng libespeak-ng1 sox libsox-fmt-all postgresql chromium chromium-driver

export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: help install system-deps run test lint typecheck bench clean frontend

help:
	@echo "make run     install what is missing, then start smalltts"
	@echo "make test    install what is missing, then run every test"
	@echo "make bench   runtime benchmark (table + JSON in bench/)"

# npm dev-chain tools at the repo root (anvil, solc); reinstalled when package-lock.json changes.
NODE_STAMP := node_modules/.installed

# The frontend's own npm packages (Vite, React, wagmi, x402, vitest, playwright-core), kept apart from the
# root's dev-chain tools; reinstalled when frontend/package-lock.json changes.
FRONTEND_STAMP := frontend/node_modules/.installed
FRONTEND_SOURCES := $(shell find frontend/src -type f 2>/dev/null) frontend/index.html frontend/package.json \
	frontend/vite.config.ts frontend/tsconfig.json frontend/tsconfig.app.json frontend/tsconfig.node.json

install: system-deps $(STAMP) $(NODE_STAMP) $(FRONTEND_STAMP)

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "smalltts: installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "smalltts: missing Debian packages; run: sudo apt-get install$$missing"; exit 1; fi; \
	fi

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "smalltts: installing Python packages into $(VENV) (first run takes a few minutes)"
	@# torch first and pinned: the local CPU wheel; a bare `torch` requirement would pull a CUDA build.
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[$(ORT_EXTRA),train,dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

$(NODE_STAMP): package-lock.json
	@echo "smalltts: installing npm dev-chain tools (anvil, solc)"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $(NODE_STAMP)

$(FRONTEND_STAMP): frontend/package-lock.json
	@echo "smalltts: installing the frontend's npm packages"
	@cd frontend && npm ci --no-audit --no-fund --loglevel=error
	@touch $(FRONTEND_STAMP)

# The built page that `smalltts run` serves at /; rebuilt only when a frontend source changed.
frontend: $(FRONTEND_STAMP) frontend/dist/index.html

frontend/dist/index.html: $(FRONTEND_STAMP) $(FRONTEND_SOURCES)
	@cd frontend && npm run build --silent

run: install frontend
	@$(PY) -m service.cli run --host $(HOST) --port $(PORT)

test: install docker-check
	@HF_HUB_OFFLINE=1 $(PY) -m pytest -q

# Compose files and Dockerfiles, checked without a Docker engine (CI has none). docker-compose v1 (Debian's,
# installed here when missing) renders every compose file; v1 ignores `profiles:` and renders all services
# at once, so tests/docker asserts what each profile starts. Where Docker Compose v2 is present it also
# renders the root compose.yml (`include:` is v2-only) and the mainnet stack once per profile. hadolint lints
# every Dockerfile; each rule it is told to ignore is explained in docker/.hadolint.yaml.
.PHONY: docker-check
COMPOSE_FILES := docker/compose.yml docker/compose.mainnet.yml docker/compose.templates.yml
DOCKER_CHECK_PROFILES := gpu scale
DOCKERFILES := $(wildcard docker/*.Dockerfile)
# The mainnet stack requires a pay_to address; any address renders it.
COMPOSE_CHECK_ENV := SMALLTTS_PAYMENT__PAY_TO=0x000000000000000000000000000000000000dEaD

docker-check: $(STAMP)
	@command -v docker-compose >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "smalltts: installing docker-compose (v1; validates compose files without an engine)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; \
	  else echo "smalltts: docker-compose missing; run: sudo apt-get install --no-install-recommends docker-compose"; \
	    exit 1; fi; }
	@set -e; for f in $(COMPOSE_FILES); do $(COMPOSE_CHECK_ENV) docker-compose -f $$f config -q; done
	@if docker compose version >/dev/null 2>&1; then set -e; for p in "" $(DOCKER_CHECK_PROFILES); do \
	  $(COMPOSE_CHECK_ENV) docker compose $${p:+--profile $$p} config -q; \
	  $(COMPOSE_CHECK_ENV) docker compose -f docker/compose.mainnet.yml $${p:+--profile $$p} config -q; \
	done; fi
	@$(VENV)/bin/hadolint --config docker/.hadolint.yaml $(DOCKERFILES)
	@echo "smalltts: docker-check ok ($(words $(COMPOSE_FILES)) compose files, $(words $(DOCKERFILES)) Dockerfiles)"

lint: install
	@$(PY) -m ruff check model training service tests
	@$(PY) -m ruff format --check model training service tests

typecheck: install
	@$(PY) -m mypy model/config.py model/schedule.py model/text model/runtime service

bench: install
	@$(PY) -m service.cli bench --out bench/runtime.json
	@$(PY) -m service.cli bench-server --out bench/server.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
