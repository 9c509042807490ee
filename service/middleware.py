"""Two small ASGI middlewares installed by create_app.

BodyLimitMiddleware   refuses bodies over the route's byte limit while they stream in: a declared
                      Content-Length over the limit gets 413 before anything is read, and a body that grows
                      past it raises RequestTooLargeError from `receive`, so multipart parsing stops there
                      instead of spooling the rest.
RequestLogMiddleware  gives each request an id (X-Request-Id), counts it in the metrics by route template
                      and status, and writes its one access-log line (with the batch size and queue wait that
                      the handler left in `request.state`).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import RequestTooLargeError, error_response
from service.logs import log_request
from service.metrics import ServiceMetrics

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class BodyLimitMiddleware:
    """`limits` maps exact paths to (max bytes, field named in the error); other paths get `default`."""

    def __init__(self, app: ASGIApp, limits: Mapping[str, tuple[int, str]], default: tuple[int, str]) -> None:
        self.app = app
        self.limits = dict(limits)
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, field = self.limits.get(scope["path"], self.default)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            error = _too_large(declared, limit, field, declared=True)
            await error_response(413, error.code, error.message, error.field)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(received, limit, field, declared=False)
            return message

        await self.app(scope, limited_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def _too_large(size: int, limit: int, field: str, *, declared: bool) -> RequestTooLargeError:
    what = "declared body size" if declared else "body"
    hint = " (reference file up to max_upload_bytes plus the form fields)" if field == "audio" else ""
    return RequestTooLargeError(
        f"request {what} {'is' if declared else 'exceeds'} {size} bytes; the limit is {limit} bytes{hint}",
        field=field,
        code=f"{field}_too_large",
    )


class RequestLogMiddleware:
    """Request id, metrics by route and the access-log line; outermost of our middlewares."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500  # what the client sees if the app fails before starting a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed_s = time.perf_counter() - started
            route = _route_template(scope)
            self.metrics.observe_request(route, scope["method"], status, elapsed_s)
            fields: dict[str, Any] = {
                "request_id": request_id,
                "method": scope["method"],
                "route": route,
                "path": scope["path"],
                "status": status,
                "duration_ms": round(elapsed_s * 1000, 1),
            }
            for key in ("batch_size", "queue_wait_ms", "audio_s", "model_calls"):
                if key in state:
                    fields[key] = state[key]
            log_request(fields)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _REQUEST_ID_RE.match(candidate):
                return candidate
    return uuid.uuid4().hex[:16]


def _route_template(scope: Scope) -> str:
    # The router leaves the matched route in the scope; its template keeps the label set small
    # (/v1/voices/{voice_id}, not one label per id). Unmatched paths and the static frontend are "other".
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) and path else "other"
