# smalltts HTTP service, CPU build: the built frontend plus a slim Python with the `serve` extra (onnxruntime,
# no torch: the serving path never imports it). Build from the repository root:
#
#   docker build -f docker/service.Dockerfile -t smalltts:cpu .
#   docker run --rm -p 8000:8000 -v "$PWD/models:/models:ro" smalltts:cpu
#
# Volumes: /models (model folder, read-only is fine), /data (voices, SQLite ledger, devchain.json).
# Settings: any SMALLTTS_* variable (see service/settings.py); the ones below are this image's defaults.

# Node 22 LTS builds the page (Vite 8 needs >= 20.19, frontend/package.json `engines`). Python 3.11 on
# bookworm, like the development machines, so espeak-ng (1.51) phonemizes exactly as in the tests.
ARG NODE_IMAGE=node:22-bookworm-slim
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- stage 1: the frontend (Vite + React) -> /src/frontend/dist ---------------------------------------------
FROM ${NODE_IMAGE} AS frontend
WORKDIR /src/frontend
# Lockfile first: `npm ci` is re-run only when the dependencies change.
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# --- stage 2: the service -------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS service

# espeak-ng: the phonemizer's system library (the espeakng-loader wheel is only a fallback) and the CLI the
# built-in 'default' voice is made with. Versions are not pinned: Debian bookworm only ships security fixes.
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid so that host folders mounted at /models and /data can be chowned to it (10001:10001).
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
# Dependencies from pyproject.toml alone, before the source: this slow layer survives code edits.
RUN python -m venv /opt/venv
COPY pyproject.toml docker/list_requirements.py ./
RUN python list_requirements.py pyproject.toml serve > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt list_requirements.py

# The source, installed in place (editable, no dependencies): data files that live next to the code (the
# compiled test token, voices) stay where the code looks for them. Owned by root: the app cannot rewrite itself.
# training/ stays out: it is torch code, and this image has no torch.
COPY README.md ./
COPY model/ model/
COPY service/ service/
RUN pip install --no-deps -e .
COPY --from=frontend /src/frontend/dist /app/frontend/dist

ENV SMALLTTS_HOST=0.0.0.0 \
    SMALLTTS_PORT=8000 \
    SMALLTTS_MODEL_DIR=/models \
    SMALLTTS_DATA_DIR=/data \
    SMALLTTS_FRONTEND_DIR=/app/frontend/dist \
    SMALLTTS_LOG_JSON=1 \
    HF_HOME=/data/huggingface \
    HF_HUB_DISABLE_TELEMETRY=1

# Numeric, so that runtimes which enforce runAsNonRoot can check it without reading /etc/passwd.
USER 10001:10001
VOLUME ["/models", "/data"]
EXPOSE 8000

# /ready, not /health: ready means the model is loaded and (when payments are on) the chain answered.
# Python's urllib because the slim image has no curl; any non-2xx status raises, so the check fails.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('SMALLTTS_PORT', '8000'), timeout=4)"]

ENTRYPOINT ["smalltts"]
CMD ["serve"]
