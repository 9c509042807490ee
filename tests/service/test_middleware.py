"""Body limits while streaming, request ids, and the one access-log line per request."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest

from service.logs import JsonFormatter, KeyValueFormatter
from tests.service.conftest import ServeFactory
from tests.service.support import form

pytestmark = pytest.mark.anyio

CHUNK = 64 * 1024


class CountingBody:
    """A chunked upload of `total` bytes that records how much the server actually pulled."""

    def __init__(self, head: bytes, total: int) -> None:
        self.head = head
        self.total = total
        self.sent = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        self.sent += len(self.head)
        while self.sent < self.total:
            self.sent += CHUNK
            yield b"\0" * CHUNK


async def test_oversized_chunked_upload_is_refused_while_streaming(serve: ServeFactory) -> None:
    boundary = "xyz"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="text"\r\n\r\nHi.\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="audio"; filename="a.wav"\r\n'
        "Content-Type: audio/wav\r\n\r\n"
    ).encode()
    body = CountingBody(head, total=50 * 1024 * 1024)  # 50 MiB, no Content-Length
    async with serve(max_upload_bytes=256 * 1024) as served:
        limit = served.app.state.settings.max_body_bytes
        reply = await served.client.post(
            "/synthesize",
            params={"duration": 1},
            content=body,
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "audio_too_large"
    assert str(limit) in reply.json()["error"]["message"]
    assert body.sent <= limit + 2 * CHUNK  # stopped at the limit, not after buffering 50 MiB


async def test_declared_oversized_body_is_refused_before_reading(serve: ServeFactory) -> None:
    body = CountingBody(b"", total=10 * 1024 * 1024)
    async with serve() as served:
        reply = await served.client.post(
            "/v1/audio/speech",
            content=body,
            headers={"content-type": "application/json", "content-length": str(10 * 1024 * 1024)},
        )
    assert reply.status_code == 413
    assert reply.json()["error"]["code"] == "body_too_large"
    assert body.sent <= CHUNK


async def test_request_id_is_echoed_or_made(serve: ServeFactory) -> None:
    async with serve() as served:
        given = await served.client.get("/health", headers={"X-Request-Id": "abc-123"})
        made = await served.client.get("/health")
        hostile = await served.client.get("/health", headers={"X-Request-Id": "bad id\twith tabs"})
    assert given.headers["X-Request-Id"] == "abc-123"
    assert len(made.headers["X-Request-Id"]) == 16
    assert hostile.headers["X-Request-Id"] != "bad id\twith tabs"


async def test_one_access_log_line_per_request_with_batch_facts(
    serve: ServeFactory, reference_wav: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve() as served:
        with caplog.at_level(logging.INFO, logger="smalltts.access"):
            await served.client.post(
                "/synthesize", params={"duration": 1.0}, headers={"X-Request-Id": "req-1"}, **form("Hi.", reference_wav)
            )
    lines = [r for r in caplog.records if r.name == "smalltts.access"]
    assert len(lines) == 1
    record = lines[0].__dict__
    assert record["request_id"] == "req-1"
    assert record["route"] == "/synthesize"
    assert record["status"] == 200
    assert record["duration_ms"] > 0
    assert record["batch_size"] == 1
    assert record["queue_wait_ms"] >= 0
    parsed = json.loads(JsonFormatter().format(lines[0]))
    assert {"request_id", "route", "status", "duration_ms", "batch_size", "queue_wait_ms"} <= set(parsed)
    plain = KeyValueFormatter().format(lines[0])
    assert "request_id=req-1" in plain and "status=200" in plain
