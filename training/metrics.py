"""Scalar logging for every trainer: stdout, `metrics.jsonl`, TensorBoard (when installed), a loss-curve PNG.

Only the main process (rank 0) writes. `metrics.jsonl` holds one {"step": k, name: value, ...} object per
logged step; it is what the PNG is drawn from and what tests read.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class MetricsLogger:
    def __init__(self, run_dir: str | Path, *, enabled: bool = True, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._writer: Any = None
        self._started = time.perf_counter()
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl_path = self.run_dir / "metrics.jsonl"
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # the `tensorboard` package is optional; stdout and JSONL always work
                self._writer = None
            else:
                self._writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))

    def log(self, step: int, scalars: Mapping[str, float], *, echo: bool = True) -> None:
        if not self.enabled:
            return
        row = {"step": step, **{name: float(value) for name, value in scalars.items()}}
        with self.jsonl_path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        if self._writer is not None:
            for name, value in scalars.items():
                self._writer.add_scalar(name, float(value), step)
        if echo:
            elapsed_s = time.perf_counter() - self._started
            parts = " ".join(f"{name}={_fmt(float(value))}" for name, value in scalars.items())
            print(f"step {step:>7d}  {parts}  ({elapsed_s:.1f} s)", file=sys.stdout, flush=True)

    def close(self, title: str = "") -> Path | None:
        """Flushes TensorBoard and draws `loss.png`; returns its path (None when matplotlib is missing)."""
        if not self.enabled:
            return None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return plot_loss_curves(self.jsonl_path, self.run_dir / "loss.png", title=title)


def _fmt(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) and abs(value) < 1e5 else f"{value:.3e}"


def read_metrics(path: str | Path) -> list[dict[str, float]]:
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_loss_curves(jsonl_path: Path, png_path: Path, *, title: str = "") -> Path | None:
    """One panel per scalar whose name contains "loss" (every scalar if none does), step on the x axis."""
    rows = read_metrics(jsonl_path)
    if not rows:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names = sorted({key for row in rows for key in row if key != "step"})
    shown = [name for name in names if "loss" in name] or names
    fig, axes = plt.subplots(len(shown), 1, figsize=(7, 2.2 * len(shown)), squeeze=False, sharex=True)
    for ax, name in zip(axes[:, 0], shown, strict=True):
        points = [(row["step"], row[name]) for row in rows if name in row and math.isfinite(row[name])]
        if points:
            steps, values = zip(*points, strict=True)
            ax.plot(steps, values, linewidth=1.2)
            if min(values) > 0 and max(values) / max(min(values), 1e-12) > 20:
                ax.set_yscale("log")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    if title:
        axes[0, 0].set_title(title)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path
