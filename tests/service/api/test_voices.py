"""Voices: create, list, show, delete, use, and survive a restart (stored on disk)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf

from tests.service.conftest import ServeFactory
from tests.service.support import form

pytestmark = pytest.mark.anyio


async def test_create_list_get_delete(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve() as served:
        client = served.client
        created = await client.post("/v1/voices", **form(None, reference_wav, name="narrator"))
        assert created.status_code == 201, created.text
        voice = created.json()
        assert voice["name"] == "narrator"
        assert voice["reference_s"] == pytest.approx(1.0, abs=0.01)
        assert voice["sample_rate_hz"] == 24_000
        listed = (await client.get("/v1/voices")).json()["voices"]
        assert [v["id"] for v in listed] == [voice["id"]]
        assert (await client.get(f"/v1/voices/{voice['id']}")).json() == voice
        deleted = await client.delete(f"/v1/voices/{voice['id']}")
        assert deleted.status_code == 200 and deleted.json() == {"id": voice["id"], "deleted": True}
        assert (await client.get("/v1/voices")).json()["voices"] == []
        gone = await client.get(f"/v1/voices/{voice['id']}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "voice_unknown"


async def test_voices_survive_a_restart(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve() as served:
        voice = (await served.client.post("/v1/voices", **form(None, reference_wav, name="keep me"))).json()
        first = await served.client.post(
            "/synthesize", params={"duration": 1.0, "seed": 4, "voice": voice["id"]}, **form("Hi.")
        )
    async with serve() as served:  # a new app over the same data dir
        listed = (await served.client.get("/v1/voices")).json()["voices"]
        assert listed == [voice]
        again = await served.client.post(
            "/synthesize", params={"duration": 1.0, "seed": 4, "voice": voice["id"]}, **form("Hi.")
        )
    assert first.status_code == again.status_code == 200
    assert again.content == first.content  # the stored latents give the same audio after the restart


async def test_latents_are_recomputed_for_another_model(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve() as served:
        voice = (await served.client.post("/v1/voices", **form(None, reference_wav))).json()
        folder = served.state.voices.root / voice["id"]
    for latents in folder.glob("latents-*.npy"):  # as if the voice had been made with another model
        latents.unlink()
    async with serve() as served:
        reply = await served.client.post("/synthesize", params={"duration": 1.0, "voice": voice["id"]}, **form("Hi."))
    assert reply.status_code == 200
    assert len(list(folder.glob("latents-*.npy"))) == 1


async def test_voice_store_limit(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve(max_voices=1) as served:
        assert (await served.client.post("/v1/voices", **form(None, reference_wav))).status_code == 201
        full = await served.client.post("/v1/voices", **form(None, reference_wav))
    assert full.status_code == 409
    assert full.json()["error"]["code"] == "voice_limit_reached"


async def test_half_written_voice_folders_are_ignored(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve() as served:
        root = served.state.voices.root
    (root / ".tmp-v_dead-0000").mkdir()
    (root / "broken").mkdir()
    (root / "broken" / "meta.json").write_text("{not json")
    async with serve() as served:
        assert (await served.client.get("/v1/voices")).json()["voices"] == []


async def test_voice_audio_plays_back_the_stored_reference(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve() as served:
        voice = (await served.client.post("/v1/voices", **form(None, reference_wav))).json()
        reply = await served.client.get(f"/v1/voices/{voice['id']}/audio")
        stored, stored_rate_hz = sf.read(served.state.voices.root / voice["id"] / "reference.wav", dtype="float32")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "audio/wav"
    played, rate_hz = sf.read(io.BytesIO(reply.content), dtype="float32")
    assert rate_hz == stored_rate_hz == voice["sample_rate_hz"]
    assert played.shape == stored.shape == (24_000,)
    np.testing.assert_array_equal(played, stored)


async def test_voice_audio_of_an_unknown_or_deleted_voice_is_404(serve: ServeFactory, reference_wav: bytes) -> None:
    async with serve() as served:
        unknown = await served.client.get("/v1/voices/v_nope/audio")
        voice = (await served.client.post("/v1/voices", **form(None, reference_wav))).json()
        assert (await served.client.delete(f"/v1/voices/{voice['id']}")).status_code == 200
        deleted = await served.client.get(f"/v1/voices/{voice['id']}/audio")
    for reply in (unknown, deleted):
        assert reply.status_code == 404
        assert reply.headers["content-type"] == "application/json"
        error = reply.json()["error"]
        assert (error["code"], error["field"]) == ("voice_unknown", "voice")
        assert "POST /v1/voices" in error["message"]


async def test_voice_audio_route_is_documented(serve: ServeFactory) -> None:
    async with serve() as served:
        schema = (await served.client.get("/openapi.json")).json()
    route = schema["paths"]["/v1/voices/{voice_id}/audio"]["get"]
    assert route["operationId"] == "voices-get_voice_audio"
    assert list(route["responses"]["200"]["content"]) == ["audio/wav"]
    assert route["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
