"""Every user mistake gets its documented 4xx and the JSON error body, never a 500.

One app serves the whole table (module-scoped), so the cases stay cheap.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf
from asgi_lifespan import LifespanManager

from model.errors import InputError
from model.runtime.audio import decode_reference
from model.runtime.synthesizer import Synthesizer
from service.app import create_app
from service.errors import RequestTooLargeError, ServiceError, error_response
from service.settings import Settings
from tests.service.support import form, tone_wav

pytestmark = pytest.mark.anyio

MAX_TEXT_CHARS = 200
MAX_UPLOAD_BYTES = 256 * 1024


def wav_of(samples: np.ndarray, rate_hz: int = 16_000, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate_hz, format="WAV", subtype=subtype)
    return buffer.getvalue()


GOOD = tone_wav(1.0)
SILENT = wav_of(np.zeros(16_000, np.float32))
TOO_SHORT = tone_wav(0.1)
TOO_LONG = tone_wav(31.0, rate_hz=4_000, subtype="PCM_U8")  # 31 s in ~124 KB
NAN_SAMPLES = wav_of(np.full(16_000, np.nan, np.float32), subtype="FLOAT")
OVERSIZED = GOOD + b"\0" * (MAX_UPLOAD_BYTES + 1 - len(GOOD))  # over max_upload_bytes, within the body limit
HUGE = b"\0" * (MAX_UPLOAD_BYTES * 2)  # over the whole-body limit


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    code: str
    field: str | None
    kwargs: dict[str, Any] = field(default_factory=dict)


def synth(name: str, status: int, code: str, field_name: str | None, **kwargs: Any) -> Case:
    kwargs.setdefault("params", {"duration": 1.0})
    return Case(f"synthesize: {name}", "POST", "/synthesize", status, code, field_name, kwargs)


def speech(name: str, status: int, code: str, field_name: str | None, body: Any, **kwargs: Any) -> Case:
    return Case(f"speech: {name}", "POST", "/v1/audio/speech", status, code, field_name, {"json": body, **kwargs})


VOICE = "default-test-voice"  # stored by the fixture
CASES: list[Case] = [
    # /synthesize: text
    synth("text missing", 422, "text_missing", "text", **form(None, GOOD)),
    synth("text empty", 422, "text_missing", "text", **form("", GOOD)),
    synth("text whitespace", 422, "text_empty", "text", **form("   \n ", GOOD)),
    synth("text too long", 422, "text_too_long", "text", **form("a" * (MAX_TEXT_CHARS + 1), GOOD)),
    synth("text only an unknown tag", 422, "text_no_tokens", "text", **form("[bogus]", GOOD)),
    synth("text with NUL", 422, "text_invalid", "text", **form("hi\x00there", GOOD)),
    # /synthesize: query parameters
    synth("duration nan", 422, "duration_not_finite", "duration", params={"duration": "nan"}, **form("Hi.", GOOD)),
    synth("duration inf", 422, "duration_not_finite", "duration", params={"duration": "inf"}, **form("Hi.", GOOD)),
    synth("duration negative", 422, "duration_out_of_range", "duration", params={"duration": -1}, **form("Hi.", GOOD)),
    synth("duration zero", 422, "duration_out_of_range", "duration", params={"duration": 0}, **form("Hi.", GOOD)),
    synth("duration huge", 422, "duration_out_of_range", "duration", params={"duration": 1e9}, **form("Hi.", GOOD)),
    synth("duration text", 422, "duration_invalid", "duration", params={"duration": "abc"}, **form("Hi.", GOOD)),
    synth("seed negative", 422, "seed_invalid", "seed", params={"duration": 1, "seed": -1}, **form("Hi.", GOOD)),
    synth("seed huge", 422, "seed_invalid", "seed", params={"duration": 1, "seed": 2**40}, **form("Hi.", GOOD)),
    synth("steps zero", 422, "steps_invalid", "steps", params={"duration": 1, "steps": 0}, **form("Hi.", GOOD)),
    synth(
        "steps over max", 422, "steps_out_of_range", "steps", params={"duration": 1, "steps": 99}, **form("Hi.", GOOD)
    ),
    synth(
        "format unknown", 422, "format_invalid", "format", params={"duration": 1, "format": "mp4"}, **form("Hi.", GOOD)
    ),
    # /synthesize: reference audio
    synth("audio missing", 422, "audio_missing", "audio", **form("Hi.")),
    synth("audio empty", 422, "audio_empty", "audio", **form("Hi.", b"")),
    synth("audio undecodable", 422, "audio_undecodable", "audio", **form("Hi.", b"definitely not audio" * 50)),
    synth("audio silent", 422, "audio_silent", "audio", **form("Hi.", SILENT)),
    synth("audio too short", 422, "audio_too_short", "audio", **form("Hi.", TOO_SHORT)),
    synth("audio too long", 422, "audio_too_long", "audio", **form("Hi.", TOO_LONG)),
    synth("audio NaN samples", 422, "audio_undecodable", "audio", **form("Hi.", NAN_SAMPLES)),
    synth("audio too large", 413, "audio_too_large", "audio", **form("Hi.", OVERSIZED)),
    synth("body too large", 413, "audio_too_large", "audio", **form("Hi.", HUGE)),
    synth("audio sent as text", 422, "audio_invalid", "audio", files=[("text", (None, "Hi.")), ("audio", (None, "x"))]),
    synth("json body", 415, "content_type_unsupported", "content-type", json={"text": "Hi."}),
    synth("urlencoded body", 415, "content_type_unsupported", "content-type", data={"text": "Hi."}),
    synth("no body", 415, "content_type_unsupported", "content-type"),
    synth("unknown voice", 404, "voice_unknown", "voice", params={"duration": 1, "voice": "nobody"}, **form("Hi.")),
    synth(
        "voice and audio", 422, "voice_conflict", "voice", params={"duration": 1, "voice": VOICE}, **form("Hi.", GOOD)
    ),
    # /v1/audio/speech
    speech("input missing", 422, "input_missing", "input", {"voice": VOICE}),
    speech("input empty", 422, "text_empty", "input", {"input": "", "voice": VOICE}),
    speech("input too long", 422, "text_too_long", "input", {"input": "a" * (MAX_TEXT_CHARS + 1), "voice": VOICE}),
    speech("input not a string", 422, "input_invalid", "input", {"input": 5, "voice": VOICE}),
    speech("voice unknown", 404, "voice_unknown", "voice", {"input": "Hi.", "voice": "nobody"}),
    speech("voice object unknown", 404, "voice_unknown", "voice", {"input": "Hi.", "voice": {"id": "nobody"}}),
    speech("speed zero", 422, "speed_invalid", "speed", {"input": "Hi.", "voice": VOICE, "speed": 0}),
    speech("speed huge", 422, "speed_invalid", "speed", {"input": "Hi.", "voice": VOICE, "speed": 100}),
    speech(
        "format aac",
        422,
        "response_format_unsupported",
        "response_format",
        {"input": "Hi.", "voice": VOICE, "response_format": "aac"},
    ),
    speech(
        "format unknown",
        422,
        "response_format_invalid",
        "response_format",
        {"input": "Hi.", "voice": VOICE, "response_format": "mp4"},
    ),
    speech(
        "duration nan",
        422,
        "duration_not_finite",
        "duration",
        None,
        content=b'{"input": "Hi.", "voice": "x", "duration": NaN}',
        headers={"content-type": "application/json"},
    ),
    speech(
        "duration out of range",
        422,
        "duration_out_of_range",
        "duration",
        {"input": "Hi.", "voice": VOICE, "duration": 600},
    ),
    speech("steps over max", 422, "steps_out_of_range", "steps", {"input": "Hi.", "voice": VOICE, "steps": 50}),
    speech("seed negative", 422, "seed_invalid", "seed", {"input": "Hi.", "voice": VOICE, "seed": -5}),
    speech(
        "stream sse",
        422,
        "stream_format_invalid",
        "stream_format",
        {"input": "Hi.", "voice": VOICE, "stream_format": "sse"},
    ),
    speech(
        "invalid json",
        422,
        "body_invalid_json",
        "body",
        None,
        content=b"{not json",
        headers={"content-type": "application/json"},
    ),
    speech("json array", 422, "body_invalid", "body", [1, 2, 3]),
    speech(
        "text/plain body",
        415,
        "content_type_unsupported",
        "content-type",
        None,
        content=b"Hi.",
        headers={"content-type": "text/plain"},
    ),
    speech("json too large", 413, "body_too_large", "body", {"input": "a" * 1_000_000, "voice": VOICE}),
    # /v1/voices
    Case("voice upload missing audio", "POST", "/v1/voices", 422, "audio_missing", "audio", form(None, None, name="x")),
    Case("voice upload silent", "POST", "/v1/voices", 422, "audio_silent", "audio", form(None, SILENT)),
    Case("voice upload json", "POST", "/v1/voices", 415, "content_type_unsupported", "content-type", {"json": {}}),
    Case("voice name too long", "POST", "/v1/voices", 422, "name_invalid", "name", form(None, GOOD, name="n" * 101)),
    Case("voice get unknown", "GET", "/v1/voices/nobody", 404, "voice_unknown", "voice"),
    Case("voice delete unknown", "DELETE", "/v1/voices/nobody", 404, "voice_unknown", "voice"),
    Case("voice id too long", "GET", "/v1/voices/" + "x" * 65, 422, "voice_id_invalid", "voice_id"),
    # anything else
    Case("unknown route", "GET", "/v2/nothing", 404, "not_found", None),
    Case("wrong method", "DELETE", "/health", 405, "method_not_allowed", None),
]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def client(
    tmp_path_factory: pytest.TempPathFactory, synthesizer: Synthesizer, anyio_backend: str
) -> AsyncIterator[httpx.AsyncClient]:
    root: Path = tmp_path_factory.mktemp("errors")
    settings = Settings(
        data_dir=root / "data",
        frontend_dir=root / "none",
        builtin_voice=False,
        max_text_chars=MAX_TEXT_CHARS,
        max_upload_bytes=MAX_UPLOAD_BYTES,
    )
    app = create_app(settings, synthesizers=[synthesizer])
    async with LifespanManager(app, startup_timeout=120) as manager:
        reference = decode_reference(GOOD, synthesizer.sample_rate_hz)
        app.state.service.voices.create(reference, name="test", voice_id=VOICE)
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as http:
            yield http


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_bad_input_gets_its_documented_4xx(client: httpx.AsyncClient, case: Case) -> None:
    reply = await client.request(case.method, case.path, **case.kwargs)
    assert reply.status_code == case.status, reply.text
    error = reply.json()["error"]
    assert (error["code"], error["field"]) == (case.code, case.field), error
    assert error["message"]


async def test_limits_are_named_in_the_message(client: httpx.AsyncClient) -> None:
    reply = await client.post("/synthesize", params={"duration": 99}, **form("Hi.", GOOD))
    assert "0.5" in reply.json()["error"]["message"] and "30" in reply.json()["error"]["message"]
    reply = await client.post("/synthesize", params={"duration": 1}, **form("a" * 300, GOOD))
    assert str(MAX_TEXT_CHARS) in reply.json()["error"]["message"]


def test_error_types_carry_status_and_code() -> None:
    error = RequestTooLargeError("too big", field="audio")
    assert isinstance(error, ServiceError) and error.status_code == 413 and error.code == "body_too_large"
    body = error_response(413, error.code, error.message, error.field).body
    assert b'"field":"audio"' in body
    assert issubclass(InputError, ValueError)
