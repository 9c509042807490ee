"""Structured logs: plain `key=value` lines or one JSON object per line (`SMALLTTS_LOG_JSON=1`).

The access log (`smalltts.access`) writes one line per request with its id, route, status, duration, batch
size and queue wait; uvicorn's own access log is switched off by the CLI so each request is logged once.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

access_logger = logging.getLogger("smalltts.access")

# Attributes every LogRecord has; anything else was passed through `extra=` and belongs in the line.
# (uvicorn adds `color_message`, a copy of the message with terminal colours.)
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", "color_message"}


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRIBUTES}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and every `extra=` field."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_extra_fields(record),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    """`2026-01-01 12:00:00 info smalltts.access request id=ab12 route=/synthesize status=200 ...`"""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{key}={_plain(value)}" for key, value in _extra_fields(record).items())
        line = f"{self.formatTime(record)} {record.levelname.lower()} {record.name} {record.getMessage()}"
        line = f"{line} {fields}" if fields else line
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def _plain(value: object) -> str:
    text = f"{value:.1f}" if isinstance(value, float) else str(value)
    return json.dumps(text) if (" " in text or not text) else text


def configure_logging(*, json_lines: bool, level: str = "info") -> None:
    """Sends every log record (ours and uvicorn's) to stderr in one format; called by the CLI."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def log_request(fields: Mapping[str, Any]) -> None:
    """Writes the one access-log line of a finished request."""
    access_logger.info("request", extra=dict(fields))
