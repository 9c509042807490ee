from __future__ import annotations

import json
from pathlib import Path

import pytest

from smalltts.cli.main import main
from tests.training.isolation import fresh_accelerator_state, one_torch_thread  # noqa: F401  (autouse)
from training.metrics import read_metrics


def test_dataset_build_and_train_from_the_command_line(
    tmp_path: Path, corpus_dir: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    manifest, codec = str(corpus_dir / "manifest.jsonl"), str(tiny_model_dir / "codec")
    args = ["--codec-dir", codec, "--out", str(data), "--speaker-encoder", "none", "--no-progress"]
    code = main(["dataset", "build", "--manifest", manifest, *args])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[0])
    assert summary["num_kept"] == 9 and summary["skipped_by_reason"]["undecodable audio"] == 1
    run = tmp_path / "asr"
    assert main(["train", "asr", "--data", str(data), "--out", str(run), "--steps", "2", "--log-every", "1",
                 "--batch-size", "2", "--cpu"]) == 0  # fmt: skip
    assert len(read_metrics(run / "metrics.jsonl")) == 2
    saved = json.loads((run / "config.json").read_text())
    assert saved["config"]["loader"]["max_batch_size"] == 2 and saved["config"]["run"]["steps"] == 2
    # a second fresh run into the same folder is refused with one line, exit 2
    assert main(["train", "asr", "--data", str(data), "--out", str(run), "--steps", "2", "--cpu"]) == 2
    assert "already holds checkpoints" in capsys.readouterr().err


def test_user_mistakes_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "teacher", "--data", str(tmp_path), "--out", str(tmp_path / "r"), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("smalltts: error:") and "dataset build" in err and len(err.splitlines()) == 1
    assert main(["dataset", "build", "--manifest", str(tmp_path / "none.jsonl"), "--codec-dir", str(tmp_path),
                 "--out", str(tmp_path / "d")]) == 2  # fmt: skip
    assert "manifest not found" in capsys.readouterr().err


def test_distill_takes_the_teachers_preset_and_refuses_another(
    tmp_path: Path, dataset_dir: Path, teacher_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--data", str(dataset_dir), "--teacher", str(teacher_run), "--cpu", "--steps", "1"]
    assert main(["train", "distill", "--out", str(tmp_path / "bad"), "--preset", "small", *common]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "disagrees with the teacher's preset tiny" in err
    assert main(["train", "distill", "--out", str(tmp_path / "run"), "--scorer-updates", "1", *common]) == 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["config"]["preset"] == "tiny" and saved["config"]["scorer_updates"] == 1


def test_flags_reach_the_config_groups_and_bad_values_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import training.config as config_module
    from smalltts.cli.main import build_parser
    from smalltts.cli.train import build_config

    common = ["--data", str(tmp_path), "--out", str(tmp_path / "r")]
    args = build_parser("train").parse_args(
        ["train", "teacher", *common, "--preset", "small", "--grad-accum-steps", "4", "--precision", "fp16",
         "--compile", "--warmup-steps", "50", "--ema-decay", "0.99", "--text-drop-prob", "0.2", "--batch-size", "3",
         "--max-frames-per-batch", "900", "--num-workers", "1"]
    )  # fmt: skip
    cfg = build_config(args, config_module)
    assert (cfg.run.grad_accum_steps, cfg.run.precision, cfg.run.compile) == (4, "fp16", True)
    assert (cfg.optim.warmup_steps, cfg.ema_beta, cfg.text_drop_prob) == (50, 0.99, 0.2)
    assert (cfg.loader.max_batch_size, cfg.loader.max_frames_per_batch, cfg.loader.num_workers) == (3, 900, 1)
    assert cfg.run.steps == config_module.teacher_config_for("small").run.steps  # the preset's recipe otherwise
    args = build_parser("train").parse_args(
        ["train", "distill", *common, "--teacher", str(tmp_path), "--gan-weight", "0.5", "--sv-weight", "0.1",
         "--mixed-precision", "no"]
    )  # fmt: skip
    cfg = build_config(args, config_module)
    assert (cfg.gan_weight, cfg.sv_weight, cfg.run.precision) == (0.5, 0.1, "fp32")

    assert main(["train", "teacher", *common, "--grad-accum-steps", "0"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "grad_accum_steps" in err
    assert main(["train", "teacher", *common, "--text-drop-prob", "2"]) == 2
    assert "text_drop_prob must be in [0, 1]" in capsys.readouterr().err
