"""POST /v1/audio/speech: OpenAI's request shape, and the official OpenAI client against a live server."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from openai import OpenAI

from model.runtime.synthesizer import Synthesizer
from service.app import create_app
from service.settings import Settings
from tests.service.conftest import ServeFactory
from tests.service.support import form, live_server

pytestmark = pytest.mark.anyio


async def make_voice(served_client: httpx.AsyncClient, reference_wav: bytes) -> str:
    reply = await served_client.post("/v1/voices", **form(None, reference_wav))
    assert reply.status_code == 201, reply.text
    voice_id: str = reply.json()["id"]
    return voice_id


async def test_json_request_returns_wav(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve() as served:
        voice = await make_voice(served.client, reference_wav)
        reply = await served.client.post(
            "/v1/audio/speech",
            json={
                "model": "tts-1",
                "input": "Hello there.",
                "voice": voice,
                "response_format": "wav",
                "duration": 1.5,
                "seed": 3,
            },
        )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "audio/wav"
    info = sf.info(io.BytesIO(reply.content))
    assert (info.samplerate, info.channels, info.frames) == (24_000, 1, 12 * 3200)
    assert reply.headers["X-Smalltts-Seed"] == "3"


async def test_voice_object_form_is_accepted(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve() as served:
        voice = await make_voice(served.client, reference_wav)
        reply = await served.client.post(
            "/v1/audio/speech", json={"input": "Hi.", "voice": {"id": voice}, "response_format": "flac"}
        )
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "audio/flac"


async def test_default_format_is_mp3_and_pcm_is_raw_s16le(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve() as served:
        voice = await make_voice(served.client, reference_wav)
        mp3 = await served.client.post("/v1/audio/speech", json={"input": "Hi.", "voice": voice, "duration": 1.0})
        pcm = await served.client.post(
            "/v1/audio/speech", json={"input": "Hi.", "voice": voice, "duration": 1.0, "response_format": "pcm"}
        )
    assert mp3.status_code == 200 and mp3.headers["content-type"] == "audio/mpeg"
    assert sf.info(io.BytesIO(mp3.content)).format == "MP3"
    assert pcm.status_code == 200 and len(pcm.content) == 8 * 3200 * 2  # 8 frames, 16-bit samples


async def test_speed_shortens_the_estimated_duration(serve: ServeFactory, reference_wav: bytes) -> None:
    text = "A sentence of a fair length, to give the estimate room."
    async with serve() as served:
        voice = await make_voice(served.client, reference_wav)
        normal = await served.client.post("/v1/audio/speech", json={"input": text, "voice": voice, "speed": 1.0})
        fast = await served.client.post("/v1/audio/speech", json={"input": text, "voice": voice, "speed": 2.0})
    normal_s = float(normal.headers["X-Smalltts-Duration-S"])
    fast_s = float(fast.headers["X-Smalltts-Duration-S"])
    assert fast.headers["X-Smalltts-Duration-Estimated"] == "true"
    assert fast_s == pytest.approx(normal_s / 2, abs=0.01)


async def test_openai_voice_names_mean_the_builtin_voice(serve: ServeFactory) -> None:
    async with serve(builtin_voice=True) as served:
        if "default" not in served.state.voices:
            pytest.skip("espeak-ng binary not installed")
        reply = await served.client.post(
            "/v1/audio/speech", json={"input": "Hi.", "voice": "alloy", "response_format": "wav"}
        )
    assert reply.status_code == 200


@pytest.fixture
def live_url(tmp_path: Path, tiny_model_dir: Path, synthesizer: Synthesizer) -> Iterator[str]:
    settings = Settings(model_dir=tiny_model_dir, data_dir=tmp_path / "data", builtin_voice=False)
    with live_server(create_app(settings, synthesizers=[synthesizer])) as url:
        yield url


def test_official_openai_client_against_the_live_app(live_url: str, reference_wav: bytes) -> None:
    voice = httpx.post(
        f"{live_url}/v1/voices", files={"audio": ("ref.wav", reference_wav, "audio/wav")}, timeout=60
    ).json()["id"]
    client = OpenAI(base_url=f"{live_url}/v1", api_key="not-needed", max_retries=0, timeout=60)
    response = client.audio.speech.create(
        model="smalltts",
        voice=voice,
        input="Hello from the OpenAI client.",
        response_format="wav",
        extra_body={"duration": 1.0, "seed": 11},
    )
    audio, rate_hz = sf.read(io.BytesIO(response.content), dtype="float32")
    assert rate_hz == 24_000
    assert audio.shape == (8 * 3200,)
    assert np.isfinite(audio).all()
    assert response.response.headers["x-smalltts-seed"] == "11"

    with client.audio.speech.with_streaming_response.create(
        model="smalltts", voice=voice, input="Streamed.", response_format="pcm", extra_body={"duration": 1.0}
    ) as streamed:
        body = b"".join(streamed.iter_bytes())
    assert len(body) == 8 * 3200 * 2
