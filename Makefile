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
# payment-ledger tests (they start their own throwaway server), chromium for the frontend's browser test, WordNet
# and the fortune cookies for the open-vocabulary training corpus (the demo's text sources).
APT_PACKAGES := espeak-ng libespeak-ng1 sox libsox-fmt-all postgresql chromium chromium-driver wordnet-base \
	fortunes-min fortunes

export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: help install system-deps run test lint typecheck bench clean frontend

help:
	@echo "make run     install what is missing, then start smalltts"
	@echo "make test    install what is missing, then run every test"
	@echo "make bench   CPU benchmarks: runtime fp32 vs int8, service batched vs unbatched (bench/*.json, *.png)"
	@echo "make gpu-check  on an NVIDIA GPU machine: CUDA tests + GPU benchmarks, no install (bench/gpu/)"
	@echo "make train-demo  retrain the bundled demo model (model/demo/) from scratch on the CPU; resumable"
	@echo "make k8s-demo    the paid demo on a local kind/k3d cluster (README \"Kubernetes\")"

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
	@# The train extra brings the CPU onnxruntime; with GPU=1 it gives way to onnxruntime-gpu, and the GPU build is
	@# reinstalled because removing the other one deletes files of the package directory the two share.
	$(if $(filter 1,$(GPU)),$(PIP) uninstall -y onnxruntime && $(PIP) install --force-reinstall --no-deps 'onnxruntime-gpu>=1.20')
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
	@$(PY) -m smalltts run --host $(HOST) --port $(PORT)

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

# The dev-chain demo on a local Kubernetes cluster (docker/k8s/overlays/devchain; README "Kubernetes"): build the
# CPU service and anvil images, load them into the current kind or k3d cluster, apply the overlay, wait until the
# replicas are ready. Needs docker, kubectl and kind or k3d; first `kind create cluster --config docker/k8s/kind.yaml`.
.PHONY: k8s-demo
K8S_DEMO_NAMESPACE := smalltts-devchain
K8S_DEMO_IMAGES := smalltts:cpu smalltts-anvil:1.7.1
KUBECTL ?= $(shell command -v kubectl 2>/dev/null || echo $(VENV)/bin/kubectl)

k8s-demo:
	docker build -f docker/service.Dockerfile -t smalltts:cpu .
	docker build -f docker/anvil.Dockerfile -t smalltts-anvil:1.7.1 .
	@context=$$($(KUBECTL) config current-context); case "$$context" in \
	  kind-*) kind load docker-image --name "$${context#kind-}" $(K8S_DEMO_IMAGES) ;; \
	  k3d-*) k3d image import --cluster "$${context#k3d-}" $(K8S_DEMO_IMAGES) ;; \
	  *) echo "smalltts: kubectl's context '$$context' is neither kind-* nor k3d-*: push $(K8S_DEMO_IMAGES) to a" \
	       "registry the cluster pulls from, then: $(KUBECTL) apply -k docker/k8s/overlays/devchain"; exit 1 ;; \
	esac
	$(KUBECTL) apply -k docker/k8s/overlays/devchain
	$(KUBECTL) -n $(K8S_DEMO_NAMESPACE) wait --for=condition=complete job/devchain-deploy --timeout=10m
	$(KUBECTL) -n $(K8S_DEMO_NAMESPACE) rollout status statefulset/smalltts --timeout=30m
	@echo "smalltts: ready on http://127.0.0.1:8080 (the page's 'Use dev wallet' pays with test USDC)"

lint: install
	@$(PY) -m ruff check model training service smalltts tests
	@$(PY) -m ruff format --check model training service smalltts tests

typecheck: install
	@$(PY) -m mypy --no-error-summary model/config.py model/schedule.py model/text model/runtime service smalltts

# CPU benchmarks on mixed lengths and a new voice per request: fp32 beside int8 (runtime), batched beside
# unbatched (HTTP service); each writes a table, JSON and a PNG chart into bench/.
bench: install
	@$(PY) -m smalltts bench --precision fp32,int8 --out bench/runtime.json
	@$(PY) -m smalltts bench-server --preset full --concurrency 1,8 --out bench/server.json

# On a machine with an NVIDIA GPU: the tests marked cuda and the GPU benchmarks (model/gpu_check.py), with only
# what is installed there (python3 with torch and numpy; no venv, no install, no espeak-ng), within 8 minutes.
# Writes bench/gpu/gpu_check.json and .png. GPU_PYTHON picks another interpreter.
GPU_PYTHON ?= $(if $(wildcard $(PY)),$(PY),python3)
.PHONY: gpu-check
gpu-check:
	@PYTHONPATH=. timeout 480 $(GPU_PYTHON) -m model.gpu_check --budget-s 400 --out-dir bench/gpu

# The prepared GPU training check (training/gpu_train_check.py): steps/s, frames/s and peak memory of the small and
# full teachers (bf16, eager and --compile) and one DMD2 step, on synthetic latents, with only torch + accelerate
# (PYTHONPATH=., no install, no download), within 8 minutes; writes bench/gpu_train_check.json. Its CPU mode
# (`--device cpu --preset tiny --quick`) runs in `make test`.
.PHONY: gpu-train-check
gpu-train-check:
	@PYTHONPATH=. timeout 480 $(or $(GPU_PYTHON),python3) -m training.gpu_train_check --budget-s 330 \
	  --out bench/gpu_train_check.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# --- the bundled demo model -----------------------------------------------------------------------------
# `make train-demo` rebuilds model/demo/ from nothing but Debian packages (espeak-ng, WordNet, fortunes) on the CPU,
# seeded (DEMO_SEED), in two stages; every step resumes (corpora fill in missing clips, dataset builds resume at the
# first missing shard, each trainer continues from its latest checkpoint under $(DEMO_DIR): `--resume latest`).
# Stage 1 (grammar, $(DEMO_GRAMMAR)): the first demo's small template grammar. It fixes the offline mel codec
#   (log-mel statistics + the Vocos-style vocoder) and trains a teacher that learns to align text (8,000 steps).
# Stage 2 (open vocabulary, $(DEMO_DIR)): WordNet's example sentences (104 voices x 60 clips + coverage clips; 4
#   fortune-cookie sentences per voice held out; 8 voices never trained on), encoded with stage 1's codec; the
#   teacher fine-tuned from stage 1's EMA; the CTC ASR used as the distillation loss (seed 0) and a separate
#   evaluation ASR (seed 1, its own corpus); the SV model; DMD2 into the 4-step student; export and evidence.
# A fresh machine runs `make demo-restore` first: the codec comes from model/demo/codec and stage 2's teacher from
# the committed fp16 state ($(DEMO_STATE)/teacher_ema.fp16.pt), so only what follows it is retrained.
# Trainers use one thread each (two threads on two cores next to another job spin-wait: 0.1 steps/s measured).
DEMO_DIR ?= .smalltts/train/demo
DEMO_SEED ?= 0
DEMO_STATE := training/demo_state
DEMO_GRAMMAR := $(DEMO_DIR)/grammar
DEMO_CODEC := $(DEMO_GRAMMAR)/vocoder/codec
DEMO_TEACHER := $(DEMO_DIR)/teacher_ema.pt
DEMO_VOCODER_STEPS ?= 20000
DEMO_GRAMMAR_STEPS ?= 8000
# The shipped teacher is this run's step-4,500 checkpoint (stopped for time; its cosine runs over 6,000 steps).
DEMO_TEACHER_STEPS ?= 6000
DEMO_ASR_STEPS ?= 3000
DEMO_SV_STEPS ?= 1500
DEMO_DISTILL_STEPS ?= 625
DEMO_ENV := OMP_NUM_THREADS=1 nice -n 10
CLI := $(PY) -m smalltts
resume_flag = $$(test -f $(1)/checkpoints/latest && echo --resume latest)
latest_ckpt = $(1)/checkpoints/$$(cat $(1)/checkpoints/latest)
SYNTH_OPEN := --text-source wordnet --heldout-text-source fortunes --min-words 3 --max-words 16

.PHONY: train-demo demo-grammar demo-codec demo-restore demo-corpus demo-data demo-teacher demo-asr demo-asr-eval \
	demo-sv demo-distill demo-export

train-demo: demo-teacher demo-asr demo-asr-eval demo-sv
	@$(MAKE) --no-print-directory demo-distill
	@$(MAKE) --no-print-directory demo-export

# Stage 1: the grammar corpus, the codec (vocoder) and the first teacher.
demo-grammar: $(STAMP)
	$(CLI) dataset synth --out $(DEMO_GRAMMAR)/corpus --speakers 104 --clips-per-speaker 40 \
	  --heldout-clips-per-speaker 4 --seed $(DEMO_SEED)
	$(PY) -m training.demo_corpus --corpus $(DEMO_GRAMMAR)/corpus --heldout-voices 8
	@$(MAKE) --no-print-directory demo-codec
	$(DEMO_ENV) $(CLI) train vocoder --manifest $(DEMO_GRAMMAR)/corpus/train.jsonl --out $(DEMO_GRAMMAR)/vocoder \
	  --seed $(DEMO_SEED) --steps $(DEMO_VOCODER_STEPS) $(call resume_flag,$(DEMO_GRAMMAR)/vocoder)
	$(DEMO_ENV) $(CLI) dataset build --manifest $(DEMO_GRAMMAR)/corpus/train.jsonl --codec-dir $(DEMO_CODEC) \
	  --out $(DEMO_GRAMMAR)/data --speaker-encoder none --no-progress
	$(DEMO_ENV) $(CLI) train teacher --preset demo --cpu --data $(DEMO_GRAMMAR)/data --out $(DEMO_GRAMMAR)/teacher \
	  --seed $(DEMO_SEED) --steps $(DEMO_GRAMMAR_STEPS) --lr 5e-4 $(call resume_flag,$(DEMO_GRAMMAR)/teacher)

# The codec folder (encoder fixed by the statistics) exists after step 0 of the vocoder run.
demo-codec:
	@test -f $(DEMO_CODEC)/encoder.onnx || $(DEMO_ENV) $(CLI) train vocoder \
	  --manifest $(DEMO_GRAMMAR)/corpus/train.jsonl --out $(DEMO_GRAMMAR)/vocoder --seed $(DEMO_SEED) --steps 0

# A fresh machine: stage 1's codec as shipped (its vocoder's weights are the decoder graph) and stage 2's teacher.
demo-restore: $(STAMP)
	@test -f $(DEMO_CODEC)/encoder.onnx || { mkdir -p $(DEMO_CODEC) && cp model/demo/codec/* $(DEMO_CODEC)/; }
	@test -f $(DEMO_TEACHER) || $(PY) -m training.demo_ship --restore-teacher $(DEMO_STATE)/teacher_ema.fp16.pt \
	  --out $(DEMO_TEACHER)

demo-corpus: $(STAMP)
	$(CLI) dataset synth --out $(DEMO_DIR)/corpus --speakers 104 --clips-per-speaker 60 --heldout-clips-per-speaker 4 \
	  --seed $(DEMO_SEED) $(SYNTH_OPEN)
	$(PY) -m training.demo_corpus --corpus $(DEMO_DIR)/corpus --heldout-voices 8
	$(CLI) dataset synth --out $(DEMO_DIR)/corpus_asr_eval --speakers 104 --clips-per-speaker 80 \
	  --heldout-clips-per-speaker 0 --seed $$(( $(DEMO_SEED) + 1 )) $(SYNTH_OPEN)
	$(PY) -m training.phoneme_report --manifest $(DEMO_DIR)/corpus/train.jsonl --out $(DEMO_STATE)/phonemes.json

# Stage 2's shards, in stage 1's codec: training text, training with speaker embeddings (the SV targets), the
# evaluation ASR's own clips, and the held-out sets (with embeddings, for similarity).
demo-data: demo-corpus
	@test -f $(DEMO_CODEC)/encoder.onnx || $(MAKE) --no-print-directory demo-grammar
	$(DEMO_ENV) $(CLI) dataset build --manifest $(DEMO_DIR)/corpus/train.jsonl --codec-dir $(DEMO_CODEC) \
	  --out $(DEMO_DIR)/data/train_text --speaker-encoder none --no-progress
	$(DEMO_ENV) $(CLI) dataset build --manifest $(DEMO_DIR)/corpus_asr_eval/manifest.jsonl --codec-dir $(DEMO_CODEC) \
	  --out $(DEMO_DIR)/data/asr_eval --speaker-encoder none --no-progress
	set -e; for split in train:train_spk heldout_sentences:heldout_sentences heldout_voices:heldout_voices; do \
	  $(DEMO_ENV) $(CLI) dataset build --manifest $(DEMO_DIR)/corpus/$${split%%:*}.jsonl --codec-dir $(DEMO_CODEC) \
	  --out $(DEMO_DIR)/data/$${split##*:} --speaker-encoder resemblyzer --no-progress; done

demo-teacher: demo-data
	@test -f $(DEMO_TEACHER) || { test -f $(DEMO_GRAMMAR)/teacher/checkpoints/latest || \
	  $(MAKE) --no-print-directory demo-grammar; \
	  $(DEMO_ENV) $(CLI) train teacher --preset demo --cpu --data $(DEMO_DIR)/data/train_text \
	  --out $(DEMO_DIR)/teacher --init $(call latest_ckpt,$(DEMO_GRAMMAR)/teacher)/teacher_ema.pt \
	  --seed $(DEMO_SEED) --steps $(DEMO_TEACHER_STEPS) --lr 3e-4 $(call resume_flag,$(DEMO_DIR)/teacher) && \
	  cp $(call latest_ckpt,$(DEMO_DIR)/teacher)/teacher_ema.pt $(DEMO_TEACHER) && \
	  cp $(call latest_ckpt,$(DEMO_DIR)/teacher)/teacher_ema.json $(DEMO_DIR)/teacher_ema.json; }

demo-asr: demo-data
	$(DEMO_ENV) $(CLI) train asr --preset demo --cpu --data $(DEMO_DIR)/data/train_text --out $(DEMO_DIR)/asr \
	  --seed $(DEMO_SEED) --steps $(DEMO_ASR_STEPS) $(call resume_flag,$(DEMO_DIR)/asr)

# The evaluation ASR is wider and deeper than the loss ASR (144 x 4, dropout 0.1, 4,000 steps): the 96 x 3 one read
# espeak-ng's everyday sentences at 13.7 % PER, the bar is 8 %.
demo-asr-eval: demo-data
	$(DEMO_ENV) $(CLI) train asr --cpu --config training/demo_asr_eval.json --data $(DEMO_DIR)/data/asr_eval \
	  --out $(DEMO_DIR)/asr_eval $(call resume_flag,$(DEMO_DIR)/asr_eval)

demo-sv: demo-data
	$(DEMO_ENV) $(CLI) train sv --preset demo --cpu --data $(DEMO_DIR)/data/train_spk --out $(DEMO_DIR)/sv \
	  --seed $(DEMO_SEED) --steps $(DEMO_SV_STEPS) $(call resume_flag,$(DEMO_DIR)/sv)

demo-distill: $(STAMP)
	$(DEMO_ENV) $(CLI) train distill --cpu --data $(DEMO_DIR)/data/train_text --out $(DEMO_DIR)/distill \
	  --teacher $(DEMO_TEACHER) --asr $(DEMO_DIR)/asr --sv $(DEMO_DIR)/sv --seed $(DEMO_SEED) \
	  --steps $(DEMO_DISTILL_STEPS) $(call resume_flag,$(DEMO_DIR)/distill)

# The student (4 steps, no guidance) into model/demo/; the teacher into $(DEMO_DIR)/teacher_model (DDIM 16 steps,
# text guidance 2) for comparison; the shipped extras (training.demo_ship: default voice, evaluation ASR, compact
# teacher state, samples, loss curves); the held-out evaluations and the everyday-sentence report.
DEMO_SAMPLE_STEPS ?= 16
DEMO_GUIDANCE ?= 2
demo-export: $(STAMP)
	$(CLI) export --checkpoint $(DEMO_DIR)/distill --codec-dir $(DEMO_CODEC) --out model/demo
	$(CLI) export --checkpoint $(DEMO_TEACHER) --codec-dir $(DEMO_CODEC) --out $(DEMO_DIR)/teacher_model \
	  --steps $(DEMO_SAMPLE_STEPS) --guidance $(DEMO_GUIDANCE)
	$(PY) -m training.demo_ship --corpus $(DEMO_DIR)/corpus --runs $(DEMO_DIR) --model model/demo --state $(DEMO_STATE)
	$(PY) -m training.codec_eval --codec-dir $(DEMO_CODEC) --manifest $(DEMO_DIR)/corpus/heldout_sentences.jsonl \
	  --asr $(DEMO_STATE)/asr.pt --json model/demo/eval/codec.json
	set -e; for split in heldout_sentences heldout_voices; do \
	  $(CLI) eval --model model/demo --data $(DEMO_DIR)/data/$$split --asr $(DEMO_STATE)/asr.pt \
	    --out model/demo/eval/$$split.json; \
	  $(CLI) eval --model $(DEMO_DIR)/teacher_model --data $(DEMO_DIR)/data/$$split --asr $(DEMO_STATE)/asr.pt \
	    --out model/demo/eval/teacher_$$split.json; done
	$(PY) -m training.demo_report --corpus $(DEMO_DIR)/corpus --teacher-model $(DEMO_DIR)/teacher_model \
	  --student-model model/demo --audio-dir $(DEMO_DIR)/everyday --out model/demo/eval/everyday.json
