from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest
import torch

from training.config import RunConfig, TeacherConfig
from training.loop import FRAMES, TrainLoop
from training.metrics import read_metrics
from training.precision import create_accelerator


def make_loop(run_dir: Path, run: RunConfig) -> tuple[TrainLoop, torch.nn.Linear, torch.optim.SGD]:
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loop = TrainLoop(
        name="toy",
        config=TeacherConfig(run=run),
        model_config=None,
        run_dir=run_dir,
        accelerator=create_accelerator(cpu=True),
        stateful={"model": model, "optimizer": optimizer},
        write_weights=lambda ckpt: None,
    )
    return loop, model, optimizer


def toy_step(model: torch.nn.Linear, optimizer: torch.optim.SGD, step: int) -> dict[str, Any]:
    x = torch.full((4, 2), float(step))
    loss = (model(x) - 1.0).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"loss": loss.detach(), "lr": 0.1, FRAMES: 40.0}  # the loss stays a tensor: read only at log steps


def test_sigterm_writes_a_checkpoint_and_resume_continues(tmp_path: Path) -> None:
    run = RunConfig(steps=6, log_every=2, checkpoint_every=0)
    loop, model, optimizer = make_loop(tmp_path, run)

    def step_fn(step: int, _: None) -> dict[str, Any]:
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler preempting the job would
        return toy_step(model, optimizer, step)

    before = signal.getsignal(signal.SIGTERM)
    result = loop.run(step_fn)
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is the loop's only while it runs
    assert result.preempted and result.final_step == 3
    assert result.checkpoint_dir == tmp_path / "checkpoints" / "step_0000003"
    assert (result.checkpoint_dir / "state.pt").is_file()

    resumed, model, optimizer = make_loop(tmp_path, run)
    assert resumed.resume("latest") == 3
    result = resumed.run(lambda step, _: toy_step(model, optimizer, step))
    assert not result.preempted and result.final_step == 6


def test_log_rows_carry_speed_and_memory(tmp_path: Path) -> None:
    loop, model, optimizer = make_loop(tmp_path, RunConfig(steps=4, log_every=2, checkpoint_every=0))
    loop.run(lambda step, _: toy_step(model, optimizer, step))
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [row["step"] for row in rows] == [1, 3]
    for row in rows:
        assert row["steps_per_s"] > 0 and row["step_time_s"] > 0 and row["peak_rss_gb"] > 0
        assert row["frames_per_s"] == pytest.approx(40.0 / row["step_time_s"])
        assert FRAMES not in row


class ReadCountingTensor(torch.Tensor):
    """A tensor that counts the reads back to Python (what would wait for a GPU): item, tolist, float."""

    reads = 0

    def item(self) -> Any:  # type: ignore[override]
        ReadCountingTensor.reads += 1
        return super().item()

    def tolist(self) -> Any:  # type: ignore[override]
        ReadCountingTensor.reads += 1
        return super().tolist()

    def __float__(self) -> float:
        ReadCountingTensor.reads += 1
        return super().__float__()


def test_step_scalars_are_read_back_only_at_log_steps(tmp_path: Path) -> None:
    loop, model, optimizer = make_loop(tmp_path, RunConfig(steps=8, log_every=4, checkpoint_every=0))
    reads_per_step = []

    def step_fn(step: int, _: None) -> dict[str, Any]:
        reads_per_step.append(ReadCountingTensor.reads)
        scalars = toy_step(model, optimizer, step)
        scalars["loss"] = scalars["loss"].as_subclass(ReadCountingTensor)
        return scalars

    ReadCountingTensor.reads = 0
    loop.run(step_fn)
    # One read per log window (steps 4 and 8), none in between.
    assert reads_per_step == [0, 0, 0, 0, 1, 1, 1, 1] and ReadCountingTensor.reads == 2
    assert read_metrics(tmp_path / "metrics.jsonl")[0]["loss"] > 0
