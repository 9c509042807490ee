"""Voices: upload a reference once, then speak with its id (latents and cross-attention K/V stay cached).

POST   /v1/voices               multipart `audio` (+ optional `name`) -> 201 {id, name, ...}
GET    /v1/voices               -> {voices: [...]}
GET    /v1/voices/{id}          -> {id, name, ...}
GET    /v1/voices/{id}/audio    -> audio/wav: the stored reference, to play it back on the page
DELETE /v1/voices/{id}          -> {id, deleted: true}
"""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, File, Form, Path, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field

from model.errors import InputError
from service.deps import PipelineDep, VoicesDep, require_multipart
from service.errors import error_responses
from service.synthesis import AUDIO_MEDIA_TYPES, BINARY_SCHEMA
from service.voices import Voice

router = APIRouter(tags=["voices"])

VoiceId = Annotated[str, Path(max_length=64, description="A voice id.", examples=["v_3f2a9c0d1b4e5f60"])]


class VoiceResponse(BaseModel):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "v_3f2a9c0d1b4e5f60",
                    "name": "narrator",
                    "created_at": "2026-01-01T12:00:00Z",
                    "reference_s": 4.2,
                    "sample_rate_hz": 24000,
                }
            ]
        }
    }

    id: str
    name: str
    created_at: str = Field(description="ISO 8601 UTC.")
    reference_s: float = Field(description="Length of the stored reference in seconds.")
    sample_rate_hz: int

    @classmethod
    def of(cls, voice: Voice) -> VoiceResponse:
        return cls(
            id=voice.id,
            name=voice.name,
            created_at=voice.created_at,
            reference_s=voice.reference_s,
            sample_rate_hz=voice.sample_rate_hz,
        )


class VoiceListResponse(BaseModel):
    voices: list[VoiceResponse]


class VoiceDeletedResponse(BaseModel):
    id: str
    deleted: bool = True


@router.post(
    "/v1/voices",
    status_code=201,
    responses=error_responses(400, 409, 413, 415, 422, 503),
    dependencies=[Depends(require_multipart)],
    summary="Store a reference voice",
)
async def create_voice(
    pipeline: PipelineDep,
    voices: VoicesDep,
    audio: Annotated[
        UploadFile | None, File(description="Reference recording (wav, flac, ogg, mp3; any rate, any channels).")
    ] = None,
    name: Annotated[
        str | None, Form(max_length=100, description="A label for the voice.", examples=["narrator"])
    ] = None,
) -> VoiceResponse:
    """Encode a reference recording once and store it; use the returned id as `voice`."""
    if audio is None:
        raise InputError("audio is required: upload a reference recording", field="audio", code="audio_missing")
    data = await audio.read()
    decoded, _ = await pipeline.latents_from_upload(data)
    label = (name or audio.filename or "voice").strip()[:100] or "voice"
    voice, _ = await anyio.to_thread.run_sync(lambda: voices.create(decoded, name=label))
    return VoiceResponse.of(voice)


@router.get("/v1/voices", responses=error_responses(503), summary="List stored voices")
async def list_voices(voices: VoicesDep) -> VoiceListResponse:
    """Every stored voice, oldest first."""
    return VoiceListResponse(voices=[VoiceResponse.of(v) for v in voices.list()])


@router.get("/v1/voices/{voice_id}", responses=error_responses(404, 422, 503), summary="Show one voice")
async def get_voice(voices: VoicesDep, voice_id: VoiceId) -> VoiceResponse:
    """One stored voice."""
    return VoiceResponse.of(voices.get(voice_id))


@router.get(
    "/v1/voices/{voice_id}/audio",
    response_class=Response,
    responses={
        200: {
            "description": "The stored reference recording (mono, codec rate, 16-bit PCM WAV).",
            "content": {AUDIO_MEDIA_TYPES["wav"]: BINARY_SCHEMA},
        },
        **error_responses(404, 422, 503),
    },
    summary="Play a voice's reference",
)
async def get_voice_audio(voices: VoicesDep, voice_id: VoiceId) -> Response:
    """The reference recording a stored voice was made from, as audio/wav."""
    body = await anyio.to_thread.run_sync(voices.reference_wav, voice_id)
    return Response(content=body, media_type=AUDIO_MEDIA_TYPES["wav"])


@router.delete("/v1/voices/{voice_id}", responses=error_responses(404, 422, 503), summary="Delete a voice")
async def delete_voice(voices: VoicesDep, voice_id: VoiceId) -> VoiceDeletedResponse:
    """Forget a stored voice and its files."""
    voice = await anyio.to_thread.run_sync(voices.delete, voice_id)
    return VoiceDeletedResponse(id=voice.id)
