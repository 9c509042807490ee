from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest

from service.logs import JsonFormatter, KeyValueFormatter, configure_logging, log_request


def _record(msg: str = "request", exc_info: bool = False, **extra: object) -> logging.LogRecord:
    record = logging.makeLogRecord({"name": "smalltts.access", "levelname": "INFO", "msg": msg, **extra})
    if exc_info:
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            record.exc_info = sys.exc_info()
    return record


def test_json_lines_carry_every_extra_field() -> None:
    line = JsonFormatter().format(_record(request_id="ab12", status=200, color_message="\x1b[1mrequest"))
    payload = json.loads(line)
    assert (payload["level"], payload["logger"], payload["message"]) == ("info", "smalltts.access", "request")
    assert (payload["request_id"], payload["status"]) == ("ab12", 200)
    assert "color_message" not in payload  # uvicorn's coloured copy of the message is not a field
    assert payload["time"].endswith("Z")


def test_key_value_lines_quote_what_has_spaces_and_round_floats() -> None:
    line = KeyValueFormatter().format(_record(route="/synthesize", duration_ms=12.345, text="two words", empty=""))
    assert line.endswith(' info smalltts.access request route=/synthesize duration_ms=12.3 text="two words" empty=""')


@pytest.mark.parametrize("formatter", [JsonFormatter(), KeyValueFormatter()])
def test_tracebacks_are_kept(formatter: logging.Formatter) -> None:
    assert "RuntimeError: boom" in formatter.format(_record(exc_info=True))


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root, uvicorn = logging.getLogger(), logging.getLogger("uvicorn.access")
    saved = (root.handlers[:], root.level, uvicorn.handlers[:], uvicorn.propagate)
    yield
    root.handlers[:], level, uvicorn.handlers[:], uvicorn.propagate = saved
    root.setLevel(level)


@pytest.mark.usefixtures("restored_logging")
def test_configure_logging_sends_everything_to_one_handler_in_the_chosen_format() -> None:
    logging.getLogger("uvicorn.access").addHandler(logging.NullHandler())
    logging.getLogger("uvicorn.access").propagate = False
    configure_logging(json_lines=True, level="warning")
    (handler,) = logging.getLogger().handlers
    assert isinstance(handler.formatter, JsonFormatter)
    assert logging.getLogger().level == logging.WARNING
    assert logging.getLogger("uvicorn.access").handlers == []
    assert logging.getLogger("uvicorn.access").propagate


def test_log_request_writes_one_access_line_with_the_fields(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="smalltts.access"):
        log_request({"request_id": "r1", "status": 200})
    (record,) = caplog.records
    assert (record.name, record.getMessage(), record.request_id, record.status) == (
        "smalltts.access",
        "request",
        "r1",
        200,
    )
