from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive

from model.errors import InputError
from service.payment.wire import first_error, messages, read_body, replaying_receive, request_id, set_query_param


def receiving(*sent: Message) -> Receive:
    queue = list(sent)

    async def receive() -> Message:
        return queue.pop(0)

    return receive


def chunk(body: bytes, more: bool) -> Message:
    return {"type": "http.request", "body": body, "more_body": more}


def test_messages_are_one_json_answer_with_its_length() -> None:
    start, body = messages(402, {"error": "x"}, {"PAYMENT-REQUIRED": "abc"})
    assert start["status"] == 402
    headers = dict(start["headers"])
    assert headers[b"payment-required"] == b"abc"
    assert headers[b"content-type"] == b"application/json"
    assert int(headers[b"content-length"]) == len(body["body"])
    assert json.loads(body["body"]) == {"error": "x"}
    assert body["more_body"] is False


def test_set_query_param_replaces_the_name_and_keeps_the_rest() -> None:
    scope = {"query_string": b"duration=3&text=a+b&duration=9&empty="}
    set_query_param(scope, "duration", "4.5")
    assert scope["query_string"] == b"text=a+b&empty=&duration=4.5"


def test_request_id_comes_from_the_state_or_is_made_up() -> None:
    assert request_id({"state": {"request_id": "abc"}}) == "abc"
    made = request_id({})
    assert len(made) == 16 and made != request_id({})


def test_first_error_names_the_location_of_a_validation_error() -> None:
    class Body(BaseModel):
        amount: int

    with pytest.raises(ValidationError) as caught:
        Body.model_validate({"amount": "many"})
    assert first_error(caught.value).startswith("amount: ")
    assert first_error(ValueError("plain")) == "plain"


@pytest.mark.anyio
async def test_read_body_joins_chunks_within_the_limit() -> None:
    assert await read_body(receiving(chunk(b"ab", True), chunk(b"cd", False)), limit=4) == b"abcd"


@pytest.mark.anyio
async def test_read_body_refuses_a_body_over_the_limit_with_413() -> None:
    with pytest.raises(InputError) as caught:
        await read_body(receiving(chunk(b"ab", True), chunk(b"cde", False)), limit=4)
    assert (caught.value.status, caught.value.field) == (413, "body")


@pytest.mark.anyio
async def test_read_body_raises_on_disconnect() -> None:
    with pytest.raises(ClientDisconnect):
        await read_body(receiving(chunk(b"ab", True), {"type": "http.disconnect"}), limit=100)


@pytest.mark.anyio
async def test_replaying_receive_hands_out_the_body_once_then_defers() -> None:
    receive = replaying_receive(b"body", receiving({"type": "http.disconnect"}))
    assert await receive() == chunk(b"body", False)
    assert await receive() == {"type": "http.disconnect"}
