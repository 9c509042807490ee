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
	@echo "make train-demo  retrain the bundled demo model (model/demo/) from scratch on the CPU; resumable"

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

test: install docker-check lint typecheck
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
	@$(PY) -m mypy --no-error-summary model/config.py model/schedule.py model/text model/runtime service

bench: install
	@$(PY) -m service.cli bench --out bench/runtime.json
	@$(PY) -m service.cli bench-server --out bench/server.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# --- the bundled demo model -----------------------------------------------------------------------------
# `make train-demo` rebuilds model/demo/ from nothing but espeak-ng, on the CPU, seeded (DEMO_SEED). Every step
# is resumable: the corpus fills in missing clips, dataset builds resume at the first missing shard, and each
# trainer continues from its latest checkpoint under $(DEMO_DIR) (`--resume latest` is passed when one exists).
# RESUME in a later session: run `make train-demo` again (or only the stage you need, e.g. `make demo-teacher`);
# nothing is repeated. On another machine, copy $(DEMO_DIR) over (its vocoder/, teacher/ and asr/ run folders are
# enough: the corpus and shards are rebuilt identically from the seed), or `make demo-restore` first to start
# from the vocoder checkpoint committed in $(DEMO_STATE)/ (see $(DEMO_STATE)/README.md).
# `make -j3 train-demo` trains the vocoder, the teacher and the ASR side by side (they only share the codec's
# fixed encoder, written before any of them starts).
#   1. corpus: `smalltts dataset synth`: 104 espeak-ng voices (accent x variant, own speed and pitch) x 44 clips
#   2. split: 96 training voices; 4 held-out sentences per training voice; 8 voices never trained on
#   3. codec: log-mel statistics (encoder, fixed from then on) + the Vocos-style vocoder (`smalltts train vocoder`)
#   4. shards: `smalltts dataset build` with the codec's encoder (held-out sets with resemblyzer embeddings)
#   5. teacher (`--preset demo`) and the CTC ASR used for evaluation; 6. export + eval into model/demo/
DEMO_DIR ?= .smalltts/train/demo
DEMO_SEED ?= 0
DEMO_STATE := training/demo_state
DEMO_VOCODER_STEPS ?= 20000
DEMO_TEACHER_STEPS ?= 8000
DEMO_ASR_STEPS ?= 1500
# One thread each and niced: training runs in the background next to interactive work.
DEMO_ENV := OMP_NUM_THREADS=1 nice -n 10
# The teacher is the long pole (about 1.5 steps/s on two free cores, a third of that on one).
DEMO_TEACHER_ENV := OMP_NUM_THREADS=2 nice -n 10
CLI := $(PY) -m service.cli
resume_flag = $$(test -f $(1)/checkpoints/latest && echo --resume latest)

.PHONY: train-demo demo-corpus demo-codec demo-restore demo-vocoder demo-data demo-teacher demo-asr demo-export

train-demo: demo-vocoder demo-teacher demo-asr
	@$(MAKE) --no-print-directory demo-export

demo-corpus: $(STAMP)
	$(CLI) dataset synth --out $(DEMO_DIR)/corpus --speakers 104 --clips-per-speaker 40 \
	  --heldout-clips-per-speaker 4 --seed $(DEMO_SEED)
	$(PY) -m training.demo_corpus --corpus $(DEMO_DIR)/corpus --heldout-voices 8

# The codec folder (encoder fixed by the statistics) exists after step 0 of the vocoder run; when checkpoints
# were copied in (demo-restore) it is re-exported from the latest one instead.
demo-codec: demo-corpus
	@test -f $(DEMO_DIR)/vocoder/codec/encoder.onnx || { \
	  if test -f $(DEMO_DIR)/vocoder/checkpoints/latest; then $(PY) -m training.vocoder --export-codec $(DEMO_DIR)/vocoder; \
	  else $(DEMO_ENV) $(CLI) train vocoder --manifest $(DEMO_DIR)/corpus/train.jsonl --out $(DEMO_DIR)/vocoder \
	    --seed $(DEMO_SEED) --steps 0; fi; }

# A fresh machine continues from the vocoder checkpoint committed in $(DEMO_STATE) (the teacher's state is too
# large to commit: see its RESUME note there).
demo-restore:
	@test -d $(DEMO_DIR)/vocoder/checkpoints || { mkdir -p $(DEMO_DIR)/vocoder/checkpoints && \
	  cp -r $(DEMO_STATE)/vocoder/step_* $(DEMO_DIR)/vocoder/checkpoints/ && \
	  ls $(DEMO_STATE)/vocoder | grep step_ | tail -1 > $(DEMO_DIR)/vocoder/checkpoints/latest; }

demo-vocoder: demo-codec
	$(DEMO_ENV) $(CLI) train vocoder --manifest $(DEMO_DIR)/corpus/train.jsonl --out $(DEMO_DIR)/vocoder \
	  --seed $(DEMO_SEED) --steps $(DEMO_VOCODER_STEPS) $(call resume_flag,$(DEMO_DIR)/vocoder)

demo-data: demo-codec
	$(DEMO_ENV) $(CLI) dataset build --manifest $(DEMO_DIR)/corpus/train.jsonl --codec-dir $(DEMO_DIR)/vocoder/codec \
	  --out $(DEMO_DIR)/data/train --speaker-encoder none --no-progress
	set -e; for split in heldout_sentences heldout_voices; do $(DEMO_ENV) $(CLI) dataset build \
	  --manifest $(DEMO_DIR)/corpus/$$split.jsonl --codec-dir $(DEMO_DIR)/vocoder/codec \
	  --out $(DEMO_DIR)/data/$$split --speaker-encoder resemblyzer --no-progress; done

demo-teacher: demo-data
	$(DEMO_TEACHER_ENV) $(CLI) train teacher --preset demo --cpu --data $(DEMO_DIR)/data/train --out $(DEMO_DIR)/teacher \
	  --seed $(DEMO_SEED) --steps $(DEMO_TEACHER_STEPS) $(call resume_flag,$(DEMO_DIR)/teacher)

demo-asr: demo-data
	$(DEMO_ENV) $(CLI) train asr --preset demo --cpu --data $(DEMO_DIR)/data/train --out $(DEMO_DIR)/asr \
	  --seed $(DEMO_SEED) --steps $(DEMO_ASR_STEPS) $(call resume_flag,$(DEMO_DIR)/asr)

# The teacher's EMA weights with the trained vocoder, sampled with DEMO_SAMPLE_STEPS DDIM steps (a teacher, not a
# distilled student); then the codec and model evaluations into model/demo/eval/, and the default reference voice,
# the evaluation ASR, samples and loss curves (training.demo_ship).
DEMO_SAMPLE_STEPS ?= 16
DEMO_GUIDANCE ?= 2
demo-export: $(STAMP)
	$(CLI) export --checkpoint $(DEMO_DIR)/teacher --codec-dir $(DEMO_DIR)/vocoder/codec --out model/demo \
	  --steps $(DEMO_SAMPLE_STEPS) --guidance $(DEMO_GUIDANCE)
	$(PY) -m training.demo_ship --corpus $(DEMO_DIR)/corpus --runs $(DEMO_DIR) --model model/demo --state $(DEMO_STATE)
	$(PY) -m training.codec_eval --codec-dir $(DEMO_DIR)/vocoder/codec \
	  --manifest $(DEMO_DIR)/corpus/heldout_sentences.jsonl --asr $(DEMO_DIR)/asr --json model/demo/eval/codec.json
	$(CLI) eval --model model/demo --data $(DEMO_DIR)/data/heldout_sentences --asr $(DEMO_DIR)/asr \
	  --out model/demo/eval/heldout_sentences.json
	$(CLI) eval --model model/demo --data $(DEMO_DIR)/data/heldout_voices --asr $(DEMO_DIR)/asr \
	  --out model/demo/eval/heldout_voices.json
