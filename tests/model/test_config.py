from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.config import (
    PRESETS,
    SIDECAR_FORMAT,
    ModelConfig,
    ScheduleConfig,
    preset_config,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_survives_a_json_round_trip(name: str) -> None:
    cfg = preset_config(name)
    assert cfg.preset == name
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_the_published_codec_runs_at_7_5_frames_per_second_on_64_channels() -> None:
    cfg = preset_config("full")
    assert (cfg.frame_rate_hz, cfg.latent_dim) == (7.5, 64)


def test_an_unknown_preset_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="full, small, tiny, demo"):
        preset_config("huge")


def test_unknown_keys_fail_loudly_even_nested() -> None:
    data = preset_config("tiny").to_dict()
    data["dit"]["new_knob"] = 1
    with pytest.raises(ValueError, match="DiTConfig: unknown keys"):
        ModelConfig.from_dict(data)


def test_a_partial_dict_takes_the_defaults_for_the_rest() -> None:
    cfg = ModelConfig.from_dict({"preset": "x", "schedule": {"num_steps": 8}})
    assert (cfg.schedule.num_steps, cfg.schedule.sampler, cfg.dit) == (8, "student", ModelConfig().dit)


@pytest.mark.parametrize(
    "fields",
    [
        {"student_timesteps": [1.0, 1.0, 0.5]},  # not strictly decreasing
        {"student_timesteps": [0.5, 0.75]},
        {"student_timesteps": [1.0, 0.0]},  # 0 is outside (0, 1]
        {"student_timesteps": []},
        {"sampler": "euler"},
        {"num_steps": 0},
        {"guidance_scale": 0.5},
        {"guidance_scale": float("nan")},
    ],
)
def test_schedules_that_cannot_be_sampled_are_refused(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="schedule"):
        ScheduleConfig(**fields)  # type: ignore[arg-type]


def test_student_timesteps_from_json_become_a_tuple_of_floats() -> None:
    assert ScheduleConfig(student_timesteps=[1, 0.5]).student_timesteps == (1.0, 0.5)  # type: ignore[arg-type]


def test_a_sidecar_sits_next_to_its_artifact_and_reads_back(tmp_path: Path) -> None:
    artifact = tmp_path / "denoiser.onnx"
    assert read_sidecar(artifact) is None  # the published weights carry none
    path = write_sidecar(artifact, preset_config("tiny"), opset=17)
    assert path == sidecar_path(artifact) == tmp_path / "denoiser.json"
    payload = read_sidecar(artifact)
    assert payload is not None
    assert (payload["format"], payload["artifact"], payload["opset"]) == (SIDECAR_FORMAT, "denoiser.onnx", 17)
    assert ModelConfig.from_dict(payload["model"]) == preset_config("tiny")


def test_a_json_file_that_is_not_a_sidecar_is_refused(tmp_path: Path) -> None:
    (tmp_path / "denoiser.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a smalltts sidecar"):
        read_sidecar(tmp_path / "denoiser.onnx")
