"""The duration a paid request pays for, fixed before the SDK prices it: the query's `duration` wins, else an
estimate from the form's or the JSON body's text (rounded up to 0.01 s); the JSON route gets it written back."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope

from model.errors import InputError
from service.payment.duration import DurationResolver
from service.payment.paid_routes import PAID_ROUTES
from service.payment.pricing import DurationBounds

pytestmark = pytest.mark.anyio

FORM_ROUTE, JSON_ROUTE = PAID_ROUTES
RESOLVER = DurationResolver(
    bounds=DurationBounds(0.5, 30.0),
    estimate_duration_s=lambda text: len(text) / 10,  # 10 characters a second
    max_body_bytes={route.path: 100_000 for route in PAID_ROUTES},
    max_text_chars=100,
    max_steps=32,
)


def _request(query: str = "", **kwargs: Any) -> tuple[Scope, Receive, bytes]:
    request = httpx.Request("POST", "http://test/x", **kwargs)
    body = request.read()
    scope = {
        "type": "http", "method": "POST", "path": "/x", "query_string": query.encode(),
        "headers": [(name.lower().encode(), value.encode()) for name, value in request.headers.items()],
    }  # fmt: skip

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return scope, receive, body


async def _body(receive: Receive) -> bytes:
    return (await receive())["body"]


async def test_the_query_duration_wins_and_the_body_is_not_read() -> None:
    scope, receive, _ = _request("duration=2.5&steps=8", files={"text": (None, "Hello there.")})
    duration_s, steps, replay = await RESOLVER.resolve(FORM_ROUTE, scope, receive)
    assert (duration_s, steps, replay) == (Decimal("2.5"), 8, receive)


async def test_a_form_without_duration_is_priced_from_its_text_and_replayed() -> None:
    scope, receive, sent = _request(files={"text": (None, "Hello there, friend.")})  # 20 characters: 2 s
    duration_s, steps, replay = await RESOLVER.resolve(FORM_ROUTE, scope, receive)
    assert (duration_s, steps) == (Decimal("2.00"), None)
    assert await _body(replay) == sent


async def test_the_json_route_gets_the_priced_duration_written_back() -> None:
    scope, receive, _ = _request(json={"input": "Hello there, friend.", "speed": 2.0})
    duration_s, _, replay = await RESOLVER.resolve(JSON_ROUTE, scope, receive)
    body = await _body(replay)
    assert duration_s == Decimal("1.00")
    assert json.loads(body) == {"input": "Hello there, friend.", "speed": 2.0, "duration": 1.0}
    assert dict(scope["headers"])[b"content-length"] == str(len(body)).encode()


@pytest.mark.parametrize(
    ("route", "kwargs", "code"),
    [
        (FORM_ROUTE, {"files": {"text": (None, "x" * 101)}}, "text_too_long"),
        (FORM_ROUTE, {"files": {"voice": (None, "default")}}, "text_missing"),
        (JSON_ROUTE, {"content": b"{not json"}, "invalid_json"),
        (JSON_ROUTE, {"json": {"input": "Hi.", "speed": 9}}, "invalid"),
        (JSON_ROUTE, {"json": {"input": "Hi.", "duration": "2"}}, "invalid"),
    ],
    ids=["too-long", "no-text", "not-json", "speed-out-of-range", "duration-not-a-number"],
)
async def test_what_cannot_be_priced_is_an_input_error(route: Any, kwargs: dict[str, Any], code: str) -> None:
    scope, receive, _ = _request(**kwargs)
    with pytest.raises(InputError) as caught:
        await RESOLVER.resolve(route, scope, receive)
    assert caught.value.code == code
