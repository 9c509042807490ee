# smalltts training image: CUDA torch 2.13.0 + the `train` extra (onnx, onnxscript, einops, accelerate,
# resemblyzer, ...), plus the CPU onnxruntime for the export parity checks. Build from the repository root:
#
#   docker build -f docker/train.Dockerfile -t smalltts:train .
#   docker run --rm --gpus all -v "$PWD/data:/data" -v "$PWD/runs:/runs" smalltts:train \
#       train teacher --data /data/train --out /runs/teacher --preset small
#   several GPUs: --entrypoint accelerate smalltts:train launch --multi_gpu -m smalltts train teacher ...
#
# Why a plain python base and not nvidia/cuda: the torch wheels on PyPI for Linux x86_64 are CUDA builds that
# bring their own CUDA runtime, cuBLAS, cuDNN and NCCL as nvidia-* wheels (the ~2.8 GB uv also resolves, see
# spec/offline.md §10). A CUDA base image would ship a second, unused copy of those libraries. Only the
# driver comes from the host, through the NVIDIA Container Toolkit (`--gpus all`).
# (On our development machines `pip install torch==2.13.0` gives the CPU build only because pip is pointed
# at a local CPU wheel folder; inside this image pip sees plain PyPI.)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- stage 1: the virtual environment, built with a compiler that stays behind ------------------------------
FROM ${PYTHON_IMAGE} AS venv
# gcc for the one train dependency published only as source: webrtcvad, which resemblyzer requires.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# torch first and pinned, as in the Makefile: accelerate and friends must find it already installed.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install torch==2.13.0
COPY pyproject.toml docker/list_requirements.py /tmp/build/
RUN python /tmp/build/list_requirements.py /tmp/build/pyproject.toml train serve > /tmp/build/requirements.txt \
    && /opt/venv/bin/pip install -r /tmp/build/requirements.txt

# --- stage 2: the training image ------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

# espeak-ng (phonemes and synthetic speech data) and sox (audio conversion): the Makefile's APT_PACKAGES.
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng libespeak-ng1 sox libsox-fmt-all \
    && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 smalltts \
    && useradd --system --uid 10001 --gid smalltts --home-dir /home/smalltts --create-home \
        --shell /usr/sbin/nologin smalltts \
    && install -d -o smalltts -g smalltts /data /runs

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Same base image, same interpreter path: the venv's links stay valid.
COPY --from=venv /opt/venv /opt/venv
WORKDIR /app
COPY pyproject.toml README.md ./
COPY model/ model/
COPY service/ service/
COPY training/ training/
RUN pip install --no-deps -e .

ENV HF_HOME=/data/huggingface \
    HF_HUB_DISABLE_TELEMETRY=1

USER 10001:10001
VOLUME ["/data", "/runs"]
# A batch job, not a server: nothing to probe.
HEALTHCHECK NONE

# `docker run smalltts:train <command> ...` runs `smalltts <command> ...`: dataset, train, eval, export.
ENTRYPOINT ["smalltts"]
CMD ["train", "--help"]
