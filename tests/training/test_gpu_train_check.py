"""The GPU training check's CPU mode (`--device cpu --preset tiny --quick`): the same code path the GPU runs."""

from __future__ import annotations

import json
from pathlib import Path

from training.gpu_train_check import main, write_synthetic_dataset
from training.loader import ClipDataset


def test_the_cpu_quick_mode_measures_the_teacher_and_one_distillation_step(tmp_path: Path) -> None:
    out = tmp_path / "check.json"
    assert main(["--device", "cpu", "--preset", "tiny", "--quick", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [(row["trainer"], row["preset"]) for row in report["results"]] == [("teacher", "tiny"), ("distill", "tiny")]
    for row in report["results"]:
        assert row["steps_per_s"] > 0 and row["frames_per_s"] > 0 and row["peak_rss_gb"] > 0


def test_the_synthetic_dataset_has_realistic_lengths(tmp_path: Path) -> None:
    dataset = ClipDataset.load(write_synthetic_dataset(tmp_path / "data", 40))
    seconds = dataset.lengths / 7.5
    assert len(dataset) == 40 and seconds.min() >= 2.9 and seconds.max() <= 20.1
    clip = dataset.clip(0)
    assert 12 <= clip.phonemes.shape[0] / (clip.latents.shape[0] / 7.5) <= 16  # ~14 phoneme ids per second
