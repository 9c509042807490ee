"""PaymentEdge: the ASGI middleware in front of the SDK's payment middleware, on paid routes only.

    CORS -> PaymentEdge -> x402 PaymentMiddlewareASGI (verify, handler, settle) -> routes

On the way in it
  * refuses other spellings of a paid path, and rate-limits clients that send payment headers;
  * fixes the duration being paid for (service.payment.duration) and writes the canonical value back into the
    query string, so the SDK's price callable and the handler both read the very same number;
  * checks the payment header's shape and rewrites x402 v1 as v2 (service.payment.header);
  * hands a payment whose settlement outcome was unknown its held audio (service.payment.held);
  * publishes the request's PaymentAttempt for the facilitator adapter.
On the way out it
  * releases the reservation of a paid request that failed (4xx/5xx, an exception, a client gone away);
  * replaces the SDK's 402 with our answer (service.payment.refusal: 503 on outages, the x402 v1 body);
  * copies PAYMENT-RESPONSE to X-PAYMENT-RESPONSE for clients that paid with X-PAYMENT.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from decimal import Decimal

from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from x402.schemas import PaymentRequirements, ResourceInfo

from model.errors import InputError
from service.errors import error_response
from service.payment.attempt import PaymentAttempt, current_attempt
from service.payment.duration import DurationResolver
from service.payment.facilitator import GuardedFacilitator
from service.payment.header import has_payment_header, normalize_payment_header
from service.payment.held import collect_held_answer
from service.payment.networks import PaymentTerms
from service.payment.paid_routes import PaidRoute
from service.payment.pricing import format_duration
from service.payment.ratelimit import RateLimiter
from service.payment.refusal import rate_limited, refusal_messages
from service.payment.vault import AudioVault
from service.payment.wire import copy_payment_response_to_v1, request_id, set_query_param

RequirementsFor = Callable[[Decimal, int | None, str, PaidRoute], tuple[list[PaymentRequirements], ResourceInfo]]


class PaymentEdge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[PaidRoute],
        terms: PaymentTerms,
        durations: DurationResolver,
        requirements_for: RequirementsFor,
        facilitator: GuardedFacilitator,
        accept_v1: bool,
        vault: AudioVault,
        client_limit: RateLimiter | None = None,
    ) -> None:
        self.app = app
        self.routes = {(route.method, route.path): route for route in routes}
        self.terms = terms
        self.durations = durations
        self.requirements_for = requirements_for
        self.facilitator = facilitator
        self.accept_v1 = accept_v1
        self.vault = vault
        self.client_limit = client_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.routes.get((scope.get("method", ""), scope.get("path", ""))) if scope["type"] == "http" else None
        if route is None:
            alias = self._alias_of_paid_route(scope)
            if alias is not None:
                await error_response(404, "not_found", f"not found; the paid route is {alias}")(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        if self.client_limit is not None and has_payment_header(scope):
            # Before anything is parsed: junk headers must cost an attacker more than they cost us.
            wait_s = self.client_limit.take(_client_host(scope))
            if wait_s is not None:
                await rate_limited(wait_s, "too many payment attempts from this client")(scope, receive, send)
                return
        try:
            duration_s, steps, receive = await self.durations.resolve(route, scope, receive)
        except InputError as exc:
            status = exc.status if 400 <= exc.status < 500 else 422
            await error_response(status, exc.code, exc.message, exc.field)(scope, receive, send)
            return
        except ClientDisconnect:
            return
        duration_text = format_duration(duration_s)
        set_query_param(scope, "duration", duration_text)
        if steps is not None:
            set_query_param(scope, "steps", str(steps))
        attempt = PaymentAttempt(request_id=request_id(scope), route=route.key, duration_s=duration_text, protocol=2)
        requirements, resource = self.requirements_for(duration_s, steps, str(Request(scope).url), route)
        refusal = normalize_payment_header(
            scope, requirements, resource, attempt, terms=self.terms, accept_v1=self.accept_v1
        )
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        presented = attempt.authorization
        if presented is not None and self.vault.has(presented.payer, presented.nonce):
            # A payment whose settlement outcome was unknown comes back for its audio: never settled twice.
            answer = await collect_held_answer(
                self.facilitator, self.vault, self.terms, attempt, requirements, resource
            )
            for message in answer:
                await send(message)
            return

        token = current_attempt.set(attempt)
        try:
            await self.app(scope, receive, self._shape_response(send, attempt, requirements, resource))
        finally:
            current_attempt.reset(token)
            # The handler raised or the client went away before any response started.
            await self.facilitator.release(attempt, "handler_error_or_disconnect")

    def _alias_of_paid_route(self, scope: Scope) -> str | None:
        """A paid path spelled differently ("/synthesize/", "//Synthesize"): the SDK still asks for payment on
        it, but the router would only redirect or 404, and the SDK settles any status below 400, so a payment
        presented there could pay for a redirect. Such spellings are refused before payment."""
        if scope["type"] != "http":
            return None
        canonical = re.sub(r"/+", "/", scope.get("path", "")).rstrip("/").lower()
        for (method, path), route in self.routes.items():
            if method == scope.get("method") and path.lower() == canonical:
                return route.path
        return None

    def _shape_response(
        self,
        send: Send,
        attempt: PaymentAttempt,
        requirements: list[PaymentRequirements],
        resource: ResourceInfo,
    ) -> Send:
        held_start: Message | None = None

        async def shaped_send(message: Message) -> None:
            nonlocal held_start
            if message["type"] == "http.response.start":
                if message["status"] >= 400:
                    # Free the reservation before the client hears of the failure, so that it can present
                    # the same authorization again at once (it was never settled).
                    await self.facilitator.release(attempt, f"handler_failed:{message['status']}")
                if message["status"] == 402:
                    held_start = message  # the SDK's body is `{}`: replaced once it has been sent
                    return
                if attempt.legacy_header:
                    copy_payment_response_to_v1(MutableHeaders(scope=message), self.terms)
                await send(message)
                return
            if held_start is None:
                await send(message)
                return
            if message.get("more_body", False):
                return
            answer = refusal_messages(held_start, attempt, requirements, resource, vault=self.vault, terms=self.terms)
            for reply in answer:
                await send(reply)

        return shaped_send


def _client_host(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "-"
