"""The compact demo state: fp16 on disk, fp32 again when loaded."""

from __future__ import annotations

from pathlib import Path

import torch

from training.asr import AsrModel, load_asr, save_asr
from training.config import asr_config_for
from training.demo_ship import restore_teacher, save_asr_state, save_teacher_state


def test_the_asr_ships_in_fp16_and_loads_as_the_fp32_model_rounded(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = AsrModel(asr_config_for("tiny"), latent_dim=8)
    full = save_asr(tmp_path / "asr.pt", model)
    shipped = save_asr_state(full, tmp_path / "shipped.pt")
    assert shipped.stat().st_size < 0.6 * full.stat().st_size
    loaded = load_asr(shipped)
    for (name, want), got in zip(model.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert got.dtype == want.dtype, name
        expected = want.half().to(want.dtype) if want.is_floating_point() else want
        assert torch.equal(got, expected), name


def test_the_teacher_state_round_trips_through_fp16(tmp_path: Path) -> None:
    weights = {"w": torch.randn(4, 4), "steps": torch.tensor([3])}
    teacher = tmp_path / "teacher_ema.pt"
    torch.save({"model": weights}, teacher)
    teacher.with_suffix(".json").write_text("{}")
    state = save_teacher_state(teacher, tmp_path / "teacher.fp16.pt")
    restored = torch.load(restore_teacher(state, tmp_path / "out" / "teacher.pt"), weights_only=True)["model"]
    assert restored["w"].dtype == torch.float32 and torch.equal(restored["w"], weights["w"].half().float())
    assert torch.equal(restored["steps"], weights["steps"])
