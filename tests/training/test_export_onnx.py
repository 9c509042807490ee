from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from smalltts.cli.main import main
from training.export_onnx import ExportError, export_checkpoint


@pytest.fixture(scope="module")
def exported_dir(tmp_path_factory: pytest.TempPathFactory, teacher_run: Path) -> Path:
    out = tmp_path_factory.mktemp("exported") / "model"
    assert main(["export", "--checkpoint", str(teacher_run), "--out", str(out)]) == 0
    return out


def test_an_exported_checkpoint_is_served_by_the_runtime(exported_dir: Path, heldout_dir: Path) -> None:
    from model.runtime.synthesizer import SynthesisRequest, Synthesizer
    from training.loader import ClipDataset

    sidecar = json.loads((exported_dir / "dmd" / "denoiser.json").read_text())
    assert sidecar["trained"] is True and sidecar["model"]["preset"] == "tiny"
    # A teacher is not distilled: its folder says to sample it with 16 DDIM steps, without guidance by default.
    assert sidecar["model"]["schedule"].items() >= {"sampler": "ddim", "num_steps": 16, "guidance_scale": 1.0}.items()
    synthesizer = Synthesizer.load(exported_dir)
    clip = ClipDataset.load(heldout_dir).clips[0]
    request = SynthesisRequest(token_ids=tuple(int(i) for i in clip.phonemes), ref_latents=clip.latents,
                               duration_s=1.2, seed=3)  # fmt: skip
    (result,) = synthesizer.synthesize_batch([request])
    assert result.num_frames == 9 and result.audio.shape == (9 * 3200,) and np.isfinite(result.audio).all()


def test_export_records_the_teachers_steps_and_guidance(teacher_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    assert main(["export", "--checkpoint", str(teacher_run), "--out", str(out), "--steps", "6", "--guidance", "2"]) == 0
    schedule = json.loads((out / "dmd" / "denoiser.json").read_text())["model"]["schedule"]
    assert (schedule["sampler"], schedule["num_steps"], schedule["guidance_scale"]) == ("ddim", 6, 2.0)
    with pytest.raises(ExportError, match="guidance must be >= 1"):
        export_checkpoint(teacher_run, tmp_path / "bad", guidance_scale=0.5)


def test_export_refuses_what_it_cannot_export(tmp_path: Path, asr_run: Path) -> None:
    with pytest.raises(ExportError, match="no DiT weights"):
        export_checkpoint(asr_run, tmp_path / "out")
    assert main(["export", "--checkpoint", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2


def test_eval_reports_per_and_similarity(exported_dir: Path, heldout_dir: Path, asr_run: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    out = tmp_path / "eval.json"
    code = main(["eval", "--model", str(exported_dir), "--data", str(heldout_dir), "--asr", str(asr_run),
                 "--limit", "2", "--out", str(out)])  # fmt: skip
    assert code == 0
    table = capsys.readouterr().out
    assert "generated" in table and "PER" in table
    report = json.loads(out.read_text())
    generated, truth = report["rows"]
    assert generated["num_clips"] == 2 and 0.0 <= generated["per"] and 0.0 <= truth["per"]
    if json.loads((heldout_dir / "index.json").read_text())["speaker_encoder"] is not None:
        assert -1.0 <= generated["speaker_similarity"] <= 1.0
        # Each generated clip is also compared with a different speaker's clip: the pairwise acceptance figure.
        assert -1.0 <= generated["other_voice_similarity"] <= 1.0
        assert generated["pairs_closer_to_reference"] in (0.0, 0.5, 1.0)  # 2 clips
        assert "pairs won" in table


@pytest.mark.parametrize(
    ("role", "steps", "expected"),
    [
        ("teacher_ema", None, ("ddim", 16)),
        ("teacher", 24, ("ddim", 24)),
        ("student", None, ("student", 4)),  # a DMD student keeps its distilled loop
        ("student", 2, ("student", 2)),
    ],
)
def test_the_checkpoint_role_picks_the_sampler(role: str, steps: int | None, expected: tuple[str, int]) -> None:
    from model.config import ScheduleConfig
    from training.export_onnx import _sampling_schedule

    schedule = _sampling_schedule(ScheduleConfig(), role, steps, 1.0)
    assert (schedule.sampler, schedule.num_steps) == expected
    with pytest.raises(ExportError, match="teacher checkpoints only"):
        _sampling_schedule(ScheduleConfig(), "student", None, 2.0)
