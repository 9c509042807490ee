# smalltts HTTP service, GPU build: the same service as service.Dockerfile on a CUDA base with the `gpu` extra
# (onnxruntime-gpu instead of onnxruntime; the two cannot share one environment). Build from the repo root:
#
#   docker build -f docker/service-gpu.Dockerfile -t smalltts:gpu .
#   docker run --rm --gpus all -p 8000:8000 -v "$PWD/models:/models:ro" smalltts:gpu
#
# Why this base: onnxruntime-gpu 1.31 is built for CUDA 13 and cuDNN 9 and loads libcublasLt.so.13 and
# libcudnn.so.9 from the system; the cudnn-runtime image has exactly those and nothing to compile with.
# The host needs an NVIDIA driver for CUDA 13 and the NVIDIA Container Toolkit. Without a GPU the service
# still starts, on the CPU execution provider (onnxruntime-gpu falls back), which is slow but correct.

ARG NODE_IMAGE=node:22-bookworm-slim
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04

# --- stage 1: the frontend (identical to service.Dockerfile) ------------------------------------------------
FROM ${NODE_IMAGE} AS frontend
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# --- stage 2: the service on CUDA -----------------------------------------------------------------------------
FROM ${CUDA_IMAGE} AS service

# Ubuntu 24.04's Python is 3.12 (the project needs >= 3.11); venv because the system Python is
# externally managed (PEP 668). espeak-ng as in the CPU image. Versions follow the base image's archive.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv espeak-ng \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 smalltts \
    && useradd --system --uid 10001 --gid smalltts --home-dir /home/smalltts --create-home \
        --shell /usr/sbin/nologin smalltts \
    && install -d -o smalltts -g smalltts /models /data

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

WORKDIR /app
RUN python3 -m venv /opt/venv
COPY pyproject.toml docker/list_requirements.py ./
RUN python list_requirements.py pyproject.toml gpu > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt list_requirements.py

COPY README.md ./
COPY model/ model/
COPY service/ service/
RUN pip install --no-deps -e .
COPY --from=frontend /src/frontend/dist /app/frontend/dist

# SMALLTTS_DEVICES=auto: one worker per visible GPU (set NVIDIA_VISIBLE_DEVICES or the compose device
# reservation to choose which), the CPU when none is visible.
ENV SMALLTTS_HOST=0.0.0.0 \
    SMALLTTS_PORT=8000 \
    SMALLTTS_MODEL_DIR=/models \
    SMALLTTS_DATA_DIR=/data \
    SMALLTTS_FRONTEND_DIR=/app/frontend/dist \
    SMALLTTS_DEVICES=auto \
    SMALLTTS_LOG_JSON=1 \
    HF_HOME=/data/huggingface \
    HF_HUB_DISABLE_TELEMETRY=1

USER 10001:10001
VOLUME ["/models", "/data"]
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('SMALLTTS_PORT', '8000'), timeout=4)"]

ENTRYPOINT ["smalltts"]
CMD ["serve"]
