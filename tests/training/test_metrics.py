from __future__ import annotations

from pathlib import Path

import pytest

from training.metrics import MetricsLogger, plot_loss_curves, read_metrics


def test_logged_steps_are_jsonl_rows_and_echoed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logger = MetricsLogger(tmp_path / "run", tensorboard=False)
    logger.log(1, {"loss": 2.5, "lr": 1e-3})
    logger.log(2, {"loss": 123456.0}, echo=False)
    assert read_metrics(tmp_path / "run" / "metrics.jsonl") == [
        {"step": 1, "loss": 2.5, "lr": 1e-3},
        {"step": 2, "loss": 123456.0},
    ]
    out = capsys.readouterr().out
    assert out.startswith("step       1  loss=2.5 lr=0.001  (")
    assert "123456" not in out


def test_close_draws_the_loss_curve(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    logger = MetricsLogger(tmp_path, tensorboard=False)
    for step in range(1, 4):
        logger.log(step, {"loss": 1.0 / step, "grad_norm": 0.5}, echo=False)
    png = logger.close(title="tiny")
    assert png == tmp_path / "loss.png"
    assert png.read_bytes().startswith(b"\x89PNG")


def test_a_disabled_logger_writes_nothing(tmp_path: Path) -> None:
    logger = MetricsLogger(tmp_path / "run", enabled=False)
    logger.log(1, {"loss": 1.0})
    assert logger.close() is None
    assert not (tmp_path / "run").exists()


def test_nothing_to_read_or_plot_without_rows(tmp_path: Path) -> None:
    assert read_metrics(tmp_path / "missing.jsonl") == []
    (tmp_path / "empty.jsonl").write_text("\n")
    assert plot_loss_curves(tmp_path / "empty.jsonl", tmp_path / "loss.png") is None
