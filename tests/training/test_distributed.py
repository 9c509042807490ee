"""The trainers under a real 2-process DDP launch (torchrun, gloo on the CPU), the way `accelerate launch`
starts them on several GPUs: same command, no code changes."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def launch_teacher(dataset_dir: Path, run_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    with socket.socket() as probe:  # torchrun's static rendezvous needs a concrete free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
         "-m", "smalltts", "train", "teacher", "--data", str(dataset_dir), "--out", str(run_dir),
         "--preset", "tiny", "--steps", "4", "--log-every", "1", "--checkpoint-every", "2", "--batch-size", "2",
         "--precision", "fp32", "--cpu", *extra],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip


def losses_by_step(run_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {int(row["step"]): float(row["loss"]) for row in rows if "loss" in row}


@pytest.mark.slow
def test_teacher_runs_as_two_ddp_processes_and_resumes_exactly(tmp_path: Path, dataset_dir: Path) -> None:
    run_dir = tmp_path / "run"
    done = launch_teacher(dataset_dir, run_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    # Each rank keeps its own RNG state, so a resumed multi-process run continues exactly.
    checkpoint = run_dir / "checkpoints" / "step_0000004"
    assert (checkpoint / "rng_rank0.pt").is_file() and (checkpoint / "rng_rank1.pt").is_file()
    # Only the main process writes logs and prints the summary line.
    assert done.stdout.count("teacher: 4 steps; checkpoint") == 1
    straight = losses_by_step(run_dir)
    assert sorted(straight) == [0, 1, 2, 3] and all(math.isfinite(loss) for loss in straight.values())
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert all(row["frames_per_s"] > 0 and row["peak_rss_gb"] > 0 for row in rows)

    # The same run cut after step 2 (as a preempted job leaves it) and resumed: steps 2 and 3 compute the same.
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(run_dir, resumed_dir)
    shutil.rmtree(resumed_dir / "checkpoints" / "step_0000004")
    (resumed_dir / "checkpoints" / "latest").write_text("step_0000002\n")
    kept = [line for line in (resumed_dir / "metrics.jsonl").read_text().splitlines() if json.loads(line)["step"] < 2]
    (resumed_dir / "metrics.jsonl").write_text("".join(line + "\n" for line in kept))
    done = launch_teacher(dataset_dir, resumed_dir, "--resume", "latest")
    assert done.returncode == 0, done.stderr[-2000:]
    resumed = losses_by_step(resumed_dir)
    for step in (2, 3):
        assert resumed[step] == pytest.approx(straight[step], rel=1e-6, abs=1e-9)
