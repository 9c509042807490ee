"""Integration tests of the Synthesizer on the real tiny model graphs (ONNX Runtime, no fakes)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from model.errors import InputError
from model.runtime.limits import RuntimeLimits
from model.runtime.synthesizer import (
    StageTimings,
    SynthesisRequest,
    Synthesizer,
    frames_for_duration,
)

HOP = 3200


@pytest.fixture(scope="module")
def synth(tiny_model_dir: Path) -> Synthesizer:
    return Synthesizer.load(tiny_model_dir)


def _voice(seed: int, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.2 * rng.standard_normal(int(seconds * 24_000))).astype(np.float32)


def varied_requests(synth: Synthesizer) -> list[SynthesisRequest]:
    """Four requests that differ in text length, reference length and duration."""
    rng = np.random.default_rng(0)
    shapes = [(5, 0.6, 0.4), (31, 4.1, 3.0), (12, 1.0, 1.7), (18, 2.3, 2.2)]  # (tokens, reference s, duration s)
    return [
        SynthesisRequest(
            token_ids=tuple(int(i) for i in rng.integers(1, 198, tokens)),
            ref_latents=synth.encode_reference(_voice(10 + i, ref_s)),
            duration_s=duration_s,
            seed=100 + i,
        )
        for i, (tokens, ref_s, duration_s) in enumerate(shapes)
    ]


def assert_batch_matches_one_by_one(synth: Synthesizer, requests: list[SynthesisRequest], tolerance: float) -> None:
    """The batch's audio equals each request synthesized alone (cold caches both ways), within `tolerance`.

    Shared with the optimized folders' test (test_optimize.py), each precision held to its own bound."""
    synth.clear_caches()
    batched = synth.synthesize_batch(requests)
    synth.clear_caches()
    single = [synth.synthesize_batch([request])[0] for request in requests]
    for request, a, b in zip(requests, batched, single, strict=True):
        frames = frames_for_duration(request.duration_s, 7.5)
        assert a.num_frames == b.num_frames == frames
        assert a.audio.shape == b.audio.shape == (frames * HOP,)
        assert float(np.abs(a.audio).max()) > 0.01  # not trivially silent
        assert float(np.abs(a.audio - b.audio).max()) <= tolerance


def test_a_batch_gives_the_same_audio_as_one_by_one(synth: Synthesizer) -> None:
    assert synth.accepts_batch
    assert_batch_matches_one_by_one(synth, varied_requests(synth), tolerance=1e-4)


def test_order_in_the_batch_does_not_matter(synth: Synthesizer) -> None:
    requests = varied_requests(synth)
    forward = synth.synthesize_batch(requests)
    backward = synth.synthesize_batch(requests[::-1])[::-1]
    for a, b in zip(forward, backward, strict=True):
        assert float(np.abs(a.audio - b.audio).max()) <= 1e-4


def test_same_seed_same_audio_and_another_seed_other_audio(synth: Synthesizer) -> None:
    request = varied_requests(synth)[1]
    first = synth.synthesize_batch([request])[0].audio
    again = synth.synthesize_batch([request])[0].audio
    other = synth.synthesize_batch([replace(request, seed=request.seed + 1)])[0].audio
    np.testing.assert_array_equal(first, again)
    assert float(np.abs(first - other).max()) > 1e-3


def test_a_cached_voice_gives_the_same_audio(tiny_model_dir: Path) -> None:
    uncached = Synthesizer.load(tiny_model_dir, cache_mb=0)
    cached = Synthesizer.load(tiny_model_dir)
    requests = varied_requests(cached)
    expected = uncached.synthesize_batch(requests)
    cached.synthesize_batch(requests)  # fills the reference K/V cache
    # Now every voice is a cache hit: the condition encoder runs with a 1-frame dummy reference.
    for a, b in zip(cached.synthesize_batch(requests), expected, strict=True):
        assert float(np.abs(a.audio - b.audio).max()) <= 1e-4


def test_reference_encoding_pads_to_whole_frames_and_is_cached(synth: Synthesizer) -> None:
    for samples, frames in [(3200, 1), (3201, 2), (24_000, 8), (100, 1)]:
        assert synth.encode_reference(_voice(1, samples / 24_000)).shape == (frames, 64)
    voice = _voice(2, 1.3)
    first = synth.encode_reference(voice)
    first[:] = 0.0  # callers get a copy, the cache keeps its own
    assert float(np.abs(synth.encode_reference(voice)).max()) > 0.0


def test_timestep_tables_steps_and_timings(synth: Synthesizer) -> None:
    request = varied_requests(synth)[2]
    timings = StageTimings()
    trained = synth.synthesize_batch([request], timings)[0].audio
    assert len(timings.denoise_step_ms) == 4 and timings.condition_ms > 0 and timings.decode_ms > 0
    original = synth.synthesize_batch([replace(request, timestep_table="original")])[0].audio
    assert float(np.abs(trained - original).max()) > 1e-3
    timings = StageTimings()
    two_steps = synth.synthesize_batch([replace(request, num_steps=2)], timings)[0]
    assert len(timings.denoise_step_ms) == 2 and two_steps.audio.shape == trained.shape


def test_mixed_timestep_tables_in_one_batch_match_one_by_one(synth: Synthesizer) -> None:
    requests = varied_requests(synth)
    requests[1] = replace(requests[1], timestep_table="original")
    requests[2] = replace(requests[2], num_steps=2)
    batched = synth.synthesize_batch(requests)
    for request, result in zip(requests, batched, strict=True):
        single = synth.synthesize_batch([request])[0]
        assert float(np.abs(result.audio - single.audio).max()) <= 1e-4


def test_a_bad_request_fails_the_batch_before_any_work(synth: Synthesizer) -> None:
    requests = varied_requests(synth)
    requests[3] = replace(requests[3], duration_s=-2.0)
    timings = StageTimings()
    with pytest.raises(InputError, match="duration"):
        synth.synthesize_batch(requests, timings)
    assert timings.condition_ms == 0.0


def test_over_long_reference_audio_is_an_input_error(tiny_model_dir: Path) -> None:
    synth = Synthesizer.load(tiny_model_dir, limits=RuntimeLimits(max_reference_s=2.0))
    with pytest.raises(InputError) as info:
        synth.encode_reference(_voice(0, 2.5))
    assert (info.value.field, info.value.code) == ("audio", "audio_too_long")
    with pytest.raises(InputError, match="no samples"):
        synth.encode_reference(np.zeros(0, np.float32))


def test_facts_of_the_tiny_model(synth: Synthesizer, tiny_model_dir: Path) -> None:
    summary = synth.summary()
    assert summary["preset"] == "tiny" and summary["trained"] is False
    assert (summary["sample_rate_hz"], summary["hop_samples"], summary["latent_dim"]) == (24_000, 3200, 64)
    assert summary["frame_rate_hz"] == 7.5
    assert summary["providers"] == ["CPUExecutionProvider"]
    assert summary["accepts_batch"] is True
    assert summary["model_dir"] == str(tiny_model_dir)
    torch = pytest.importorskip("torch")
    from model.export import build_random_model

    model = build_random_model("tiny", seed=0)
    with torch.no_grad():
        expected = sum(p.numel() for p in model.parameters())
    # The graphs hold every parameter inference uses (a few hundred of 172 k are folded or unused): within 1 %.
    assert abs(synth.num_parameters - expected) <= 0.01 * expected


def _published_copy(tiny_model_dir: Path, target: Path) -> Path:
    shutil.copytree(tiny_model_dir, target)
    for sidecar in target.rglob("*.json"):
        sidecar.unlink()
    return target


def test_a_folder_laid_out_like_the_published_repo_loads_and_synthesizes(tiny_model_dir: Path, tmp_path: Path) -> None:
    published = Synthesizer.load(_published_copy(tiny_model_dir, tmp_path / "published"))
    assert published.trained is True
    assert published.model_id == "smallbraineng/smalltts"
    assert published.config.preset == "full" and published.config.codec.kind == "vibevoice"
    request = SynthesisRequest(
        token_ids=(12, 40, 51, 3),
        ref_latents=published.encode_reference(_voice(3, 1.5)),
        duration_s=3.0,
        seed=1,
    )
    [result] = published.synthesize_batch([request])
    assert result.num_frames == 23 and result.audio.shape == (23 * HOP,)
    assert np.isfinite(result.audio).all()


def _fix_batch_to_one(tiny_model_dir: Path, target: Path) -> Path:
    """A copy of the model whose graphs declare batch 1 (as an export traced at batch 1 would)."""
    onnx = pytest.importorskip("onnx")
    shutil.copytree(tiny_model_dir, target)
    batch_axes = {
        "dmd/condition_encoder.onnx": (0, 0, 0, 0),
        "dmd/denoiser.onnx": (0, 0, 0, 1, 1, 0, 1, 1, 0, None),
        "codec/encoder.onnx": (0,),
        "codec/decoder.onnx": (0,),
    }
    for name, axes in batch_axes.items():
        model = onnx.load(target / name)
        for graph_input, axis in zip(model.graph.input, axes, strict=True):
            if axis is not None:
                graph_input.type.tensor_type.shape.dim[axis].dim_value = 1
        onnx.save(model, target / name)
    return target


def test_graphs_with_a_fixed_batch_of_one_run_item_by_item(
    synth: Synthesizer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    fixed = Synthesizer.load(_fix_batch_to_one(tiny_model_dir, tmp_path / "batch1"))
    assert not fixed.accepts_batch and not fixed.summary()["decoder_accepts_batch"]
    requests = varied_requests(synth)
    requests[2] = replace(requests[2], duration_s=requests[0].duration_s)  # two items share a decoder group
    for a, b in zip(fixed.synthesize_batch(requests), synth.synthesize_batch(requests), strict=True):
        assert float(np.abs(a.audio - b.audio).max()) <= 1e-4


def test_a_missing_graph_is_named(tiny_model_dir: Path, tmp_path: Path) -> None:
    from model.runtime.assets import ModelNotFoundError

    broken = _published_copy(tiny_model_dir, tmp_path / "broken")
    (broken / "dmd" / "denoiser.onnx").unlink()
    with pytest.raises(ModelNotFoundError, match="dmd/denoiser.onnx: missing"):
        Synthesizer.load(broken)


def _with_schedule(tiny_model_dir: Path, tmp_path: Path, **schedule: object) -> Path:
    """A copy of the tiny model whose denoiser sidecar asks for another sampler (keys None are removed)."""
    import json

    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    sidecar = folder / "dmd" / "denoiser.json"
    payload = json.loads(sidecar.read_text())
    for key, value in schedule.items():
        if value is None:
            payload["model"]["schedule"].pop(key)
        else:
            payload["model"]["schedule"][key] = value
    sidecar.write_text(json.dumps(payload))
    return folder


def test_a_ddim_model_is_sampled_with_its_own_steps_and_guidance(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _with_schedule(tiny_model_dir, tmp_path, sampler="ddim", num_steps=5, guidance_scale=2.0)
    synth = Synthesizer.load(folder)
    assert (synth.sampler, synth.default_steps) == ("ddim", 5)
    assert synth.summary()["sampler"] == "ddim" and synth.summary()["guidance_scale"] == 2.0
    requests = varied_requests(synth)[:3]  # num_steps unset: the model's 5
    timings = StageTimings()
    batched = synth.synthesize_batch(requests, timings)
    assert len(timings.denoise_step_ms) == 5
    for request, result in zip(requests, batched, strict=True):
        single = synth.synthesize_batch([request])[0]
        assert float(np.abs(result.audio - single.audio).max()) <= 1e-4
    timings = StageTimings()
    synth.synthesize_batch([replace(requests[0], num_steps=3)], timings)
    assert len(timings.denoise_step_ms) == 3
    student = Synthesizer.load(tiny_model_dir).synthesize_batch(requests[:1])[0]
    assert float(np.abs(batched[0].audio - student.audio).max()) > 1e-3


def test_a_sidecar_from_before_the_sampler_field_is_a_student(tiny_model_dir: Path, tmp_path: Path) -> None:
    folder = _with_schedule(tiny_model_dir, tmp_path, sampler=None, guidance_scale=None)
    synth = Synthesizer.load(folder)
    assert (synth.sampler, synth.default_steps) == ("student", 4)


def test_a_request_without_steps_makes_the_models_own_number_of_ddim_calls(
    ddim_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synth = Synthesizer.load(ddim_model_dir)
    assert synth.summary()["default_steps"] == 12 and synth.summary()["sampler"] == "ddim"
    denoiser = synth._sampler.denoiser
    times: list[float] = []
    run = denoiser.run

    def counted(*inputs: np.ndarray) -> list[np.ndarray]:
        times.append(float(inputs[2][0]))  # t of this call
        return run(*inputs)

    monkeypatch.setattr(denoiser, "run", counted)
    request = varied_requests(synth)[0]
    assert request.num_steps is None
    synth.synthesize_batch([request])
    # DDIM from t = 1 down to 1/12, the same table ("trained") a student request would name notwithstanding.
    np.testing.assert_allclose(times, np.linspace(1.0, 0.0, 13)[:-1], atol=1e-6)


@pytest.mark.parametrize(
    "schedule", [{"sampler": "euler"}, {"num_steps": 0}, {"guidance_scale": 0.5}], ids=["sampler", "steps", "guidance"]
)
def test_a_sidecar_with_an_unknown_sampling_schedule_is_refused(
    tiny_model_dir: Path, tmp_path: Path, schedule: dict[str, object]
) -> None:
    folder = _with_schedule(tiny_model_dir, tmp_path, **schedule)
    with pytest.raises(ValueError, match="schedule"):
        Synthesizer.load(folder)


def test_a_student_is_sampled_at_the_timesteps_its_sidecar_records(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _with_schedule(tiny_model_dir, tmp_path, student_timesteps=[1.0, 0.8, 0.55, 0.3])
    synth = Synthesizer.load(folder)
    assert synth.summary()["student_timesteps"] == (1.0, 0.8, 0.55, 0.3)
    denoiser = synth._sampler.denoiser
    times: list[float] = []
    run = denoiser.run

    def counted(*inputs: np.ndarray) -> list[np.ndarray]:
        times.append(float(inputs[2][0]))
        return run(*inputs)

    monkeypatch.setattr(denoiser, "run", counted)
    request = varied_requests(synth)[0]
    synth.synthesize_batch([request])
    np.testing.assert_allclose(times, [1.0, 0.8, 0.55, 0.3], atol=1e-6)
    times.clear()
    synth.synthesize_batch([replace(request, num_steps=2)])  # another step count: the generic table
    np.testing.assert_allclose(times, [1.0, 0.5], atol=1e-6)


@pytest.mark.parametrize("timesteps", [[1.0, 1.0, 0.5], [0.5, 0.75], [1.0, 0.0], []])
def test_student_timesteps_must_fall_strictly(tiny_model_dir: Path, tmp_path: Path, timesteps: list[float]) -> None:
    folder = _with_schedule(tiny_model_dir, tmp_path, student_timesteps=timesteps)
    with pytest.raises(ValueError, match="student_timesteps"):
        Synthesizer.load(folder)


@pytest.mark.parametrize("guidance", [1.0, 2.0], ids=["student", "guided-ddim"])
def test_under_io_binding_the_conditions_are_uploaded_once_per_batch(
    tiny_model_dir: Path, tmp_path: Path, guidance: float
) -> None:
    folder = tiny_model_dir
    if guidance != 1.0:  # guidance doubles the batch (cond + uncond rows): still one upload of the stacked K/V
        folder = _with_schedule(tiny_model_dir, tmp_path, sampler="ddim", num_steps=4, guidance_scale=guidance)
    plain = Synthesizer.load(folder)
    bound = Synthesizer.load(folder, io_binding=True)  # the GPU path's binding, on the CPU provider
    requests = varied_requests(plain)[:3]
    expected = plain.synthesize_batch(requests)
    denoiser = bound.graphs["dmd/denoiser.onnx"]
    denoiser.uploads.clear()
    got = bound.synthesize_batch(requests)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a.audio, b.audio)
    names = [graph_input.name for graph_input in denoiser.inputs]  # bound by position; our exports name them
    assert {name: denoiser.uploads[name] for name in names} == {
        **dict.fromkeys(names, 1),  # the K/V, masks and rope: once for the whole batch ...
        names[0]: 4,  # ... x_t and t once per step (4 steps)
        names[2]: 4,
    }
