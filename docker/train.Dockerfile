# smalltts training image: CUDA torch 2.13.0 + the `train` extra (onnx, onnxscript, einops, accelerate), plus the
# CPU onnxruntime for the export parity checks. Build from the repository root:
#
#   docker build -f docker/train.Dockerfile -t smalltts:train .
#   docker run --rm --gpus all -v "$PWD/data:/data" -v "$PWD/runs:/runs" smalltts:train \
#       training.train_teacher --help
#
# Why a plain python base and not nvidia/cuda: the torch wheels on PyPI for Linux x86_64 are CUDA builds that
# bring their own CUDA runtime, cuBLAS, cuDNN and NCCL as nvidia-* wheels (the ~2.8 GB uv also resolves, see
# spec/offline.md §10). A CUDA base image would ship a second, unused copy of those libraries. Only the
# driver comes from the host, through the NVIDIA Container Toolkit (`--gpus all`).
# (On our development machines `pip install torch==2.13.0` gives the CPU build only because pip is pointed
# at a local CPU wheel folder; inside this image pip sees plain PyPI.)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
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

WORKDIR /app
# torch first and pinned, as in the Makefile: accelerate and friends must find it already installed.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install torch==2.13.0
COPY pyproject.toml docker/list_requirements.py ./
RUN python list_requirements.py pyproject.toml train serve > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt list_requirements.py

COPY README.md ./
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

# `docker run smalltts:train <module> [args]` runs `python -m <module> [args]`, e.g. training.train_distill.
ENTRYPOINT ["python", "-m"]
CMD ["training.train_teacher", "--help"]
