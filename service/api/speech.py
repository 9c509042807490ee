"""POST /v1/audio/speech: OpenAI's text-to-speech API, so the official OpenAI clients work with base_url = us.

    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
    client.audio.speech.create(model="smalltts", voice="default", input="Hello!", response_format="wav")

`voice` is a stored voice id (POST /v1/voices); OpenAI's voice names (alloy, echo, ...) mean the built-in
voice "default". `speed` scales the estimated duration (2.0 = half as long); the extension fields
`duration`, `seed` and `steps` (the OpenAI client sends them through `extra_body`) match /synthesize.
"""

from __future__ import annotations

import io
import time
from typing import Annotated, Any, Literal

import anyio
import numpy as np
import soundfile as sf
from fastapi import APIRouter, Body, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from model.errors import InputError
from model.runtime.audio import encode_audio
from service.deps import PipelineDep, VoicesDep, require_json
from service.errors import error_responses
from service.synthesis import AUDIO_MEDIA_TYPES, BINARY_SCHEMA, MAX_SEED, SpeechJob
from service.voices import BUILTIN_VOICE_ID

router = APIRouter(tags=["speech"])

SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm", "ogg"]
OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage", "shimmer", "verse"}
)


class VoiceRef(BaseModel):
    id: str = Field(max_length=64, description="A stored voice id.")


class SpeechRequest(BaseModel):
    """OpenAI's speech request; fields we do not use (instructions) are accepted and ignored."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={
            "examples": [
                {"model": "smalltts", "input": "Hello there! [laughter]", "voice": "default", "response_format": "wav"}
            ]
        },
    )

    model: str = Field(default="smalltts", max_length=200, description="Any name; there is one model per server.")
    input: str = Field(description="What to say (tags such as [laughter] allowed).")
    voice: str | VoiceRef = Field(
        default=BUILTIN_VOICE_ID, description="A voice id from POST /v1/voices; OpenAI's names mean 'default'."
    )
    response_format: SpeechFormat = Field(
        default="mp3", description="mp3, opus, flac, wav, pcm (s16le at the model's sample rate) or ogg."
    )
    speed: float = Field(
        default=1.0, ge=0.25, le=4.0, description="Faster speech = shorter duration (estimate / speed)."
    )
    instructions: str | None = Field(default=None, max_length=4096, description="Accepted for compatibility; ignored.")
    stream_format: Literal["audio"] | None = Field(default=None, description="Only 'audio' (no server-sent events).")
    duration: float | None = Field(default=None, description="Extension: exact seconds of speech (overrides speed).")
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED, description="Extension: noise seed.")
    steps: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Extension: sampler steps (default: the model's own, 4 for the published student).",
    )


SPEECH_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The speech in the requested format (mono, the model's sample rate) with the X-Smalltts-* "
        "headers.",
        "content": dict.fromkeys(sorted(set(AUDIO_MEDIA_TYPES.values())), BINARY_SCHEMA),
    }
}


def encode_speech(audio: np.ndarray, sample_rate_hz: int, audio_format: str) -> bytes:
    """The formats OpenAI clients ask for beyond our runtime's wav/flac/ogg."""
    if audio_format in ("wav", "flac", "ogg"):
        return encode_audio(audio, sample_rate_hz, audio_format)  # type: ignore[arg-type]
    container, subtype = {"mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS"), "pcm": ("RAW", "PCM_16")}[
        audio_format
    ]
    clipped = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    buffer = io.BytesIO()
    sf.write(buffer, clipped, sample_rate_hz, format=container, subtype=subtype, **_endian(container))
    return buffer.getvalue()


def _endian(container: str) -> dict[str, str]:
    return {"endian": "LITTLE"} if container == "RAW" else {}


@router.post(
    "/v1/audio/speech",
    response_class=Response,
    responses={**SPEECH_RESPONSE, **error_responses(400, 404, 413, 415, 422, 503, 504)},
    dependencies=[Depends(require_json)],
    summary="OpenAI-compatible text to speech",
)
async def create_speech(
    request: Request,
    pipeline: PipelineDep,
    voices: VoicesDep,
    body: Annotated[SpeechRequest, Body()],
) -> Response:
    """Speak `input` in a stored voice; the request and response follow OpenAI's /v1/audio/speech."""
    arrival = time.monotonic()
    if body.response_format == "aac":
        raise InputError(
            "response_format 'aac' is not supported; use mp3, opus, flac, wav, pcm or ogg",
            field="response_format",
            code="response_format_unsupported",
        )
    prepared = await pipeline.prepare_text(body.input, field="input")
    voice_id = body.voice.id if isinstance(body.voice, VoiceRef) else body.voice
    if voice_id.lower() in OPENAI_VOICES and voice_id not in voices:
        voice_id = BUILTIN_VOICE_ID
    duration_s, estimated = pipeline.resolve_duration(body.duration, prepared, speed=body.speed)
    job = SpeechJob(
        text=prepared,
        ref_latents=await anyio.to_thread.run_sync(voices.latents, voice_id),
        duration_s=duration_s,
        duration_estimated=estimated,
        seed=pipeline.resolve_seed(body.seed),
        steps=pipeline.resolve_steps(body.steps),
    )
    speech = await pipeline.run(job, request=request, arrival_time=arrival)
    return await pipeline.respond(speech, body.response_format, arrival_time=arrival, encode=encode_speech)
