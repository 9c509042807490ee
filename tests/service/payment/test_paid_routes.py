from __future__ import annotations

import dataclasses

import pytest

from service.payment.paid_routes import PAID_ROUTES, PaidRoute


def test_the_paid_routes_are_the_fixed_synthesize_route_and_the_openai_one() -> None:
    by_key = {route.key: route for route in PAID_ROUTES}
    assert list(by_key) == ["POST /synthesize", "POST /v1/audio/speech"]  # keys are unique
    # Pricing reads the text from where each route's body keeps it.
    assert (by_key["POST /synthesize"].body_kind, by_key["POST /synthesize"].text_field) == ("form", "text")
    assert (by_key["POST /v1/audio/speech"].body_kind, by_key["POST /v1/audio/speech"].text_field) == ("json", "input")
    assert all(route.mime_type == "audio/wav" for route in PAID_ROUTES)


def test_a_paid_route_is_frozen_data() -> None:
    route = PaidRoute("GET", "/x", "d", "audio/wav", "json", "input")
    assert route.key == "GET /x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        route.path = "/y"  # type: ignore[misc]
