"""The trainers under a real 2-process DDP launch (torchrun, gloo on the CPU), the way `accelerate launch`
starts them on several GPUs: same command, no code changes."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_teacher_runs_as_two_ddp_processes(tmp_path: Path, dataset_dir: Path) -> None:
    run_dir = tmp_path / "run"
    with socket.socket() as probe:  # torchrun's static rendezvous needs a concrete free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
         "-m", "smalltts", "train", "teacher", "--data", str(dataset_dir), "--out", str(run_dir),
         "--preset", "tiny", "--steps", "4", "--log-every", "1", "--checkpoint-every", "2", "--batch-size", "2",
         "--cpu"],
        env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    # Each rank keeps its own RNG state, so a resumed multi-process run continues exactly.
    checkpoint = run_dir / "checkpoints" / "step_0000004"
    assert (checkpoint / "rng_rank0.pt").is_file() and (checkpoint / "rng_rank1.pt").is_file()
    # Only the main process writes logs and prints the summary line.
    assert done.stdout.count("teacher: 4 steps; checkpoint") == 1
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in rows if "loss" in row]
    assert len(losses) == 4 and all(math.isfinite(loss) for loss in losses)
