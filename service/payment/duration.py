"""The duration (and sampler steps) a paid request pays for, fixed by the payment edge before the SDK prices it.

    DurationResolver.resolve(route, scope, receive)   -> (duration_s, steps, receive that replays the body)
    DurationResolver.estimate(text, field=...)        -> the duration a text is priced at (also for /v1/price)

The `duration` query value wins; without it the duration is estimated from the request's text (the buffered
form or JSON body) and rounded up to 0.01 s. The JSON route carries `duration` in its body, so the paid
duration is written back there and the handler synthesizes exactly what was priced.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from urllib.parse import parse_qsl

import anyio
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.types import Receive, Scope

from model.errors import InputError
from service.payment.paid_routes import PaidRoute
from service.payment.pricing import DurationBounds, parse_duration, parse_steps, quantize_estimate
from service.payment.wire import no_more_messages, read_body, replaying_receive

EstimateDuration = Callable[[str], float]


class DurationResolver:
    """Reads what a paid request asks for, before payment: every failure is an InputError (answered 4xx)."""

    def __init__(
        self,
        *,
        bounds: DurationBounds,
        estimate_duration_s: EstimateDuration,
        max_body_bytes: Mapping[str, int],
        max_text_chars: int,
        max_steps: int,
    ) -> None:
        self.bounds = bounds
        self.estimate_duration_s = estimate_duration_s
        self.max_body_bytes = dict(max_body_bytes)  # per route path: the edge buffers bodies before the app's limits
        self.max_text_chars = max_text_chars
        self.max_steps = max_steps

    async def resolve(self, route: PaidRoute, scope: Scope, receive: Receive) -> tuple[Decimal, int | None, Receive]:
        """The duration and sampler steps to price and synthesize, and a receive that replays whatever body was
        read for them.

        Raises:
            InputError: the duration, steps, text or body cannot be priced.
            ClientDisconnect: the client went away while the body was read.
        """
        if route.body_kind == "json":
            return await self._resolve_json(route, scope, receive)
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        steps = parse_steps(query["steps"], self.max_steps) if "steps" in query else None
        if "duration" in query:
            return parse_duration(query["duration"], self.bounds), steps, receive
        body = await read_body(receive, self.max_body_bytes[route.path])
        text = await self._form_text(route, scope, body)
        return await self.estimate(text, field=route.text_field), steps, replaying_receive(body, receive)

    async def _resolve_json(
        self, route: PaidRoute, scope: Scope, receive: Receive
    ) -> tuple[Decimal, int | None, Receive]:
        body = await read_body(receive, self.max_body_bytes[route.path])
        try:
            data = json.loads(body)
        except ValueError:
            raise InputError("the body is not valid JSON", field="body", code="invalid_json", status=400) from None
        if not isinstance(data, dict):
            raise InputError("the body must be a JSON object", field="body", code="invalid", status=422)
        raw_steps = data.get("steps")
        steps = parse_steps(raw_steps, self.max_steps) if raw_steps is not None else None
        if isinstance(raw_steps, str):
            raise InputError("steps must be a whole number", field="steps", code="invalid")
        given = data.get("duration")
        if given is not None:
            if isinstance(given, bool) or not isinstance(given, int | float):
                raise InputError("duration must be a number of seconds", field="duration", code="invalid")
            duration_s = parse_duration(repr(given), self.bounds)
        else:
            speed = data.get("speed", 1.0)
            if isinstance(speed, bool) or not isinstance(speed, int | float) or not 0.25 <= speed <= 4.0:
                raise InputError("speed must be a number between 0.25 and 4", field="speed", code="invalid")
            text = data.get(route.text_field)
            if not isinstance(text, str) or not text.strip():
                raise _missing_text(route)
            duration_s = await self.estimate(text, field=route.text_field, speed=float(speed))
        data["duration"] = float(duration_s)
        rewritten = json.dumps(data).encode("utf-8")
        scope["headers"] = [(name, value) for name, value in scope["headers"] if name != b"content-length"] + [
            (b"content-length", str(len(rewritten)).encode("ascii"))
        ]
        return duration_s, steps, replaying_receive(rewritten, receive)

    def check_text(self, text: str, *, field: str) -> None:
        """The handler's own text limit, checked before espeak-ng runs."""
        if len(text) > self.max_text_chars:
            message = f"text has {len(text)} characters; the limit is {self.max_text_chars}"
            raise InputError(message, field=field, code="text_too_long")

    async def estimate(self, text: str, *, field: str, speed: float = 1.0) -> Decimal:
        """The duration `text` is priced at, rounded up to 0.01 s (espeak-ng runs in a worker thread)."""
        self.check_text(text, field=field)
        estimate_s = await anyio.to_thread.run_sync(self.estimate_duration_s, text)
        return quantize_estimate(estimate_s / speed, self.bounds)

    async def _form_text(self, route: PaidRoute, scope: Scope, body: bytes) -> str:
        request = Request(scope, replaying_receive(body, no_more_messages))
        try:
            async with request.form() as form:
                value = form.get(route.text_field)
        except (MultiPartException, ValueError) as exc:
            raise InputError(
                f"the form could not be parsed: {exc}", field="body", code="invalid_form", status=400
            ) from None
        if not isinstance(value, str) or not value.strip():
            raise _missing_text(route)
        return value


def _missing_text(route: PaidRoute) -> InputError:
    return InputError(
        f"{route.text_field} is required (or pass duration): the price depends on the duration",
        field=route.text_field,
        code="text_missing",
    )
