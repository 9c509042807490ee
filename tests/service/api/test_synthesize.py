"""POST /synthesize through the real app and the real tiny model."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import soundfile as sf

from tests.service.conftest import ServeFactory
from tests.service.support import form, tone_wav

pytestmark = pytest.mark.anyio


async def test_returns_24khz_mono_16bit_wav_of_the_requested_length(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve() as served:
        reply = await served.client.post(
            "/synthesize", params={"duration": 2.0, "seed": 7}, **form("Hello there, world.", reference_wav)
        )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "audio/wav"
    info = sf.info(io.BytesIO(reply.content))
    frames = math.ceil(2.0 * 7.5)
    assert (info.samplerate, info.channels, info.subtype, info.format) == (24_000, 1, "PCM_16", "WAV")
    assert info.frames == frames * 3200
    headers = reply.headers
    assert headers["X-Smalltts-Duration-S"] == "2.000"
    assert headers["X-Smalltts-Duration-Estimated"] == "false"
    assert headers["X-Smalltts-Frames"] == str(frames)
    assert headers["X-Smalltts-Seed"] == "7"
    assert headers["X-Smalltts-Model-Id"].startswith("random-tiny")
    assert headers["X-Smalltts-Trained"] == "false"
    assert float(headers["X-Smalltts-Processing-Ms"]) > 0
    assert int(headers["X-Smalltts-Batch-Size"]) >= 1
    assert "X-Request-Id" in headers


async def test_field_order_is_free_and_other_fields_are_ignored(serve: ServeFactory, reference_wav: bytes) -> None:
    files = [
        ("audio", ("ref.wav", reference_wav, "audio/wav")),
        ("comment", (None, "ignored", None)),
        ("text", (None, "Hello.", None)),
    ]
    async with serve() as served:
        reply = await served.client.post("/synthesize", params={"duration": 1}, files=files)
    assert reply.status_code == 200, reply.text


async def test_same_seed_gives_the_same_audio(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve() as served:
        replies = [
            await served.client.post(
                "/synthesize", params={"duration": 1.0, "seed": seed}, **form("Hi.", reference_wav)
            )
            for seed in (5, 5, 6)
        ]
    assert replies[0].content == replies[1].content
    assert replies[0].content != replies[2].content


async def test_duration_omitted_is_estimated_and_reported(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve() as served:
        short = await served.client.post("/synthesize", **form("Hi.", reference_wav))
        long = await served.client.post(
            "/synthesize", **form("This sentence is a good deal longer than the first one was.", reference_wav)
        )
    assert short.status_code == long.status_code == 200
    assert short.headers["X-Smalltts-Duration-Estimated"] == "true"
    assert float(long.headers["X-Smalltts-Duration-S"]) > float(short.headers["X-Smalltts-Duration-S"])
    frames = int(long.headers["X-Smalltts-Frames"])
    assert sf.info(io.BytesIO(long.content)).frames == frames * 3200


@pytest.mark.parametrize(
    ("audio_format", "media_type", "container"), [("flac", "audio/flac", "FLAC"), ("ogg", "audio/ogg", "OGG")]
)
async def test_other_formats(
    serve: ServeFactory, reference_wav: bytes, audio_format: str, media_type: str, container: str
) -> None:
    async with serve() as served:
        reply = await served.client.post(
            "/synthesize", params={"duration": 1.0, "format": audio_format}, **form("Hi.", reference_wav)
        )
    assert reply.status_code == 200
    assert reply.headers["content-type"] == media_type
    info = sf.info(io.BytesIO(reply.content))
    assert (info.format, info.samplerate, info.channels) == (container, 24_000, 1)


async def test_stereo_44k_flac_reference_is_accepted(serve: ServeFactory) -> None:
    reference = tone_wav(1.5, rate_hz=44_100, channels=2, container="FLAC")
    async with serve() as served:
        reply = await served.client.post("/synthesize", params={"duration": 1.0}, **form("Hi.", reference))
    assert reply.status_code == 200, reply.text


async def test_unknown_tag_gives_a_warning_header(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve() as served:
        reply = await served.client.post(
            "/synthesize", params={"duration": 1.0}, **form("Hello [laughter] and [bogus].", reference_wav)
        )
    assert reply.status_code == 200
    assert "[bogus]" in reply.headers["X-Smalltts-Warnings"]


async def test_unknown_tag_is_422_in_strict_mode(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve(strict_tags=True) as served:
        reply = await served.client.post(
            "/synthesize", params={"duration": 1.0}, **form("Hello [bogus].", reference_wav)
        )
    assert reply.status_code == 422
    assert reply.json()["error"] == {
        "code": "text_unknown_tag",
        "message": reply.json()["error"]["message"],
        "field": "text",
    }
    assert "[laughter]" in reply.json()["error"]["message"]  # the known tags are listed


async def test_a_stored_voice_can_replace_the_upload(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve() as served:
        voice = (await served.client.post("/v1/voices", **form(None, reference_wav))).json()
        by_voice = await served.client.post(
            "/synthesize", params={"duration": 1.0, "seed": 1, "voice": voice["id"]}, **form("Hi.")
        )
        by_upload = await served.client.post(
            "/synthesize", params={"duration": 1.0, "seed": 1}, **form("Hi.", reference_wav)
        )
    assert by_voice.status_code == by_upload.status_code == 200
    # The stored reference is 16-bit, so its latents may differ in the last bits from the upload's.
    a = np.frombuffer(by_voice.content[44:], np.int16).astype(np.float32)
    b = np.frombuffer(by_upload.content[44:], np.int16).astype(np.float32)
    assert a.shape == b.shape
