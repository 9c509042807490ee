from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from training.config import (
    AsrConfig,
    DistillConfig,
    LoaderConfig,
    OptimizerConfig,
    RunConfig,
    TeacherConfig,
    VocoderConfig,
    asr_config_for,
    config_from_dict,
    config_to_dict,
    distill_config_for,
    load_config,
    recipe_problems,
    sv_config_for,
    teacher_config_for,
    with_overrides,
)

REPO = Path(__file__).resolve().parents[2]
PRESETS = ("tiny", "demo", "small", "full")


@pytest.mark.parametrize("factory", [teacher_config_for, asr_config_for, sv_config_for, distill_config_for])
@pytest.mark.parametrize("preset", PRESETS)
def test_every_recipe_leaves_warmup_and_checkpoints_before_its_last_step(factory: object, preset: str) -> None:
    cfg = factory(preset)  # type: ignore[operator]
    assert recipe_problems(cfg) == []


def test_the_full_teacher_is_the_originals_schedule() -> None:
    cfg = teacher_config_for("full")
    assert (cfg.run.steps, cfg.optim.warmup_steps, cfg.optim.lr, cfg.ema_beta) == (330_000, 1500, 1.5e-4, 0.9999)
    assert asr_config_for("full").run.steps == 200_000 and asr_config_for("full").optim.warmup_steps == 4000


def test_flat_overrides_land_in_their_groups() -> None:
    cfg = teacher_config_for("tiny", steps=7, lr=2e-3, grad_accum_steps=4, precision="fp16", ema_beta=0.99)
    assert (cfg.run.steps, cfg.run.grad_accum_steps, cfg.run.precision) == (7, 4, "fp16")
    assert cfg.optim.lr == 2e-3 and cfg.ema_beta == 0.99
    assert with_overrides(cfg, seed=3).run.seed == 3  # `seed` is the run's; the loader's is named through loader
    with pytest.raises(ValueError, match="no field 'bogus'"):
        with_overrides(cfg, bogus=1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RunConfig(grad_accum_steps=0),
        lambda: RunConfig(precision="fp8"),  # type: ignore[arg-type]
        lambda: RunConfig(steps=-1),
        lambda: OptimizerConfig(lr=0.0),
        lambda: OptimizerConfig(warmup_steps=-5),
        lambda: LoaderConfig(max_batch_size=0),
        lambda: TeacherConfig(text_drop_prob=1.5),
        lambda: TeacherConfig(ema_beta=1.0),
        lambda: DistillConfig(asr_weight=-1.0),
        lambda: VocoderConfig(batch_size=0),
    ],
)
def test_configs_check_their_ranges_themselves(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_round_trip_and_unknown_keys() -> None:
    cfg = distill_config_for("tiny", gan_weight=0.5, steps=9)
    assert config_from_dict(DistillConfig, json.loads(json.dumps(config_to_dict(cfg)))) == cfg
    with pytest.raises(ValueError, match="unknown keys"):
        config_from_dict(TeacherConfig, {"no_such_field": 1})


def test_old_flat_configs_still_load() -> None:
    # The committed evaluation ASR (training/demo_state/asr.pt) and the demo's saved config were written flat.
    payload = torch.load(REPO / "training" / "demo_state" / "asr.pt", map_location="cpu", weights_only=False)
    assert "lr" in payload["config"] and "optim" not in payload["config"]
    asr = config_from_dict(AsrConfig, payload["config"])
    assert (asr.optim.lr, asr.optim.warmup_steps, asr.run.steps, asr.run.precision) == (1e-3, 300, 4000, "auto")
    assert asr.conformer.dim == 144 and asr.loader.seed == 1 and asr.run.seed == 1
    saved = load_config(REPO / "training" / "demo_asr_eval.json", AsrConfig)
    assert saved.run.log_every > 0
    old_teacher = {"preset": "tiny", "steps": 5, "lr": 1e-3, "mixed_precision": "no", "ema_beta": 0.99}
    teacher = config_from_dict(TeacherConfig, old_teacher)
    assert (teacher.run.steps, teacher.optim.lr, teacher.run.precision) == (5, 1e-3, "fp32")
    # An old DistillConfig had no schedule field: it keeps the distillation's own (constant) schedule.
    distill = config_from_dict(DistillConfig, {"preset": "tiny", "lr": 5e-5, "warmup_steps": 50, "steps": 600})
    assert distill.optim.schedule == "constant" and distill.optim.lr == 5e-5
    vocoder = config_from_dict(VocoderConfig, {"steps": 10, "lr": 2e-3, "batch_size": 4, "seed": 2})
    assert (vocoder.run.steps, vocoder.optim.lr, vocoder.batch_size, vocoder.run.seed) == (10, 2e-3, 4, 2)
