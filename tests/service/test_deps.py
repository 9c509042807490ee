from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import State
from starlette.requests import Request

from service.deps import get_service, require_json, require_multipart
from service.errors import NotReadyError, UnsupportedMediaTypeError


def _request(content_type: str | None = None, state: State | None = None) -> Request:
    headers = [(b"content-type", content_type.encode())] if content_type is not None else []

    class App:
        pass

    app: Any = App()
    app.state = state or State()
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers, "app": app})


@pytest.mark.parametrize("content_type", ["multipart/form-data; boundary=x", "Multipart/Form-Data;boundary=y"])
def test_multipart_bodies_pass(content_type: str) -> None:
    require_multipart(_request(content_type))


@pytest.mark.parametrize("content_type", ["application/json", "application/problem+json; charset=utf-8"])
def test_json_bodies_pass(content_type: str) -> None:
    require_json(_request(content_type))


@pytest.mark.parametrize(
    ("check", "content_type", "said"),
    [
        (require_multipart, "application/json", "got application/json"),
        (require_multipart, None, "got none"),
        (require_json, "text/plain", "got text/plain"),
        (require_json, "multipart/form-data; boundary=x", "got multipart/form-data"),
    ],
)
def test_other_bodies_are_415_naming_what_came(check: Any, content_type: str | None, said: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError, match=said) as caught:
        check(_request(content_type))
    assert caught.value.status_code == 415


def test_the_service_is_not_ready_until_the_lifespan_stored_it() -> None:
    with pytest.raises(NotReadyError):
        get_service(_request())
    state = State()
    state.service = marker = object()
    assert get_service(_request(state=state)) is marker
