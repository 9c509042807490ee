"""POST /synthesize?duration=N: the original's route (multipart `audio` + `text` -> audio/wav), wire-compatible."""

from __future__ import annotations

import time
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import Response

from model.errors import InputError
from service.deps import PipelineDep, VoicesDep, require_multipart
from service.errors import error_responses
from service.settings import AudioFormat
from service.synthesis import AUDIO_MEDIA_TYPES, BINARY_SCHEMA, MAX_SEED, SpeechJob

router = APIRouter(tags=["synthesize"])

AUDIO_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The speech (mono at the model's sample rate, 24 kHz for the published weights, in "
        "`sample_rate_hz` of GET /v1/config; 16-bit PCM for wav and flac). Headers X-Smalltts-* report the "
        "duration used, whether it was estimated, frames, seed, model id, whether the model is trained and "
        "the processing time.",
        "content": {AUDIO_MEDIA_TYPES[name]: BINARY_SCHEMA for name in ("wav", "flac", "ogg")},
    }
}


@router.post(
    "/synthesize",
    response_class=Response,
    responses={**AUDIO_RESPONSE, **error_responses(400, 404, 413, 415, 422, 503, 504)},
    dependencies=[Depends(require_multipart)],
    summary="Clone the voice of a reference recording and speak the text",
)
async def synthesize_speech(
    request: Request,
    pipeline: PipelineDep,
    voices: VoicesDep,
    text: Annotated[
        str | None,
        Form(
            description="What to say; may hold tags such as [laughter] (see GET /v1/config).",
            examples=["Hello, this is a test of the smalltts text to speech system."],
        ),
    ] = None,
    audio: Annotated[
        UploadFile | None,
        File(
            description="Reference recording (wav, flac, ogg, mp3; any rate, any channels). Required unless "
            "`voice` names a stored voice."
        ),
    ] = None,
    duration: Annotated[
        float | None,
        Query(description="Seconds of speech to generate; estimated from the text when omitted.", examples=[3.0]),
    ] = None,
    seed: Annotated[
        int | None, Query(ge=0, le=MAX_SEED, description="Noise seed (random when omitted).", examples=[42])
    ] = None,
    format: Annotated[AudioFormat, Query(description="Container of the answer.")] = "wav",
    steps: Annotated[
        int | None,
        Query(
            ge=1,
            le=1000,
            description="Sampler steps (default: the model's own, 4 for the published student).",
            examples=[4],
        ),
    ] = None,
    voice: Annotated[
        str | None,
        Query(max_length=64, description="A stored voice id (POST /v1/voices) to use instead of an upload."),
    ] = None,
) -> Response:
    """Speak `text` in the voice of `audio` (or a stored `voice`); returns audio/wav unless `format` says otherwise."""
    arrival = time.monotonic()
    prepared = await pipeline.prepare_text(text)
    # The cheap checks first: a bad duration should not cost a reference decode.
    duration_s, estimated = pipeline.resolve_duration(duration, prepared)
    resolved_seed, resolved_steps = pipeline.resolve_seed(seed), pipeline.resolve_steps(steps)
    if audio is not None and voice is not None:
        raise InputError("send either an audio file or a voice id, not both", field="voice", code="voice_conflict")
    if audio is not None:
        _, ref_latents = await pipeline.latents_from_upload(await audio.read())
    elif voice is not None:
        ref_latents = await anyio.to_thread.run_sync(voices.latents, voice)
    else:
        raise InputError("audio is required: upload a reference recording", field="audio", code="audio_missing")
    job = SpeechJob(
        text=prepared,
        ref_latents=ref_latents,
        duration_s=duration_s,
        duration_estimated=estimated,
        seed=resolved_seed,
        steps=resolved_steps,
    )
    speech = await pipeline.run(job, request=request, arrival_time=arrival)
    return await pipeline.respond(speech, format, arrival_time=arrival)
