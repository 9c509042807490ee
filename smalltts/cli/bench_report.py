"""What `smalltts bench` and `smalltts bench-server` report alike: percentiles, the machine, a PNG chart.

Percentiles interpolate linearly between samples (numpy's default), so with few samples p90 and p99 lie close to
the largest one; every summary carries its sample count `n` so a reader can tell.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Summary:
    """Median, p90, p99, mean, min and max of a list of measurements (NaN when it is empty)."""

    n: int
    p50: float
    p90: float
    p99: float
    mean: float
    min: float
    max: float

    def as_dict(self, digits: int = 2) -> dict[str, float | int]:
        return {
            "n": self.n,
            **{
                name: round(getattr(self, name), digits)
                for name in ("p50", "p90", "p99", "mean", "min", "max")
                if math.isfinite(getattr(self, name))
            },
        }


def summarize(values: Sequence[float]) -> Summary:
    """The percentiles of `values`; an empty list gives n = 0 and NaN everywhere."""
    if not values:
        nan = math.nan
        return Summary(0, nan, nan, nan, nan, nan, nan)
    array = np.asarray(values, dtype=np.float64)
    p50, p90, p99 = (float(x) for x in np.percentile(array, (50, 90, 99)))
    return Summary(len(array), p50, p90, p99, float(array.mean()), float(array.min()), float(array.max()))


def cpu_model_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's marketing name from /proc/cpuinfo ('AMD EPYC 7B13'), else what `platform` knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """The 1-minute load average: other work on the machine slows every stage, and this says how much there was."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def describe_machine(threads: int = 0) -> dict[str, Any]:
    """CPU name, cores, Python and ONNX Runtime versions and the load, for the table header and the JSON."""
    import onnxruntime as ort

    return {
        "cpu": cpu_model_name(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        "intra_op_threads": threads or "default",
        "load_average_1m": load_average(),
    }


@dataclass(frozen=True)
class BarGroup:
    """One cluster of bars in a chart: a label under it and one value (with an optional whisker) per series."""

    label: str
    values: dict[str, float]  # series name -> bar height
    whiskers: dict[str, float] | None = None  # series name -> top of its whisker (p90, say)


@dataclass(frozen=True)
class ChartPanel:
    title: str
    ylabel: str
    groups: Sequence[BarGroup]
    log_y: bool = False


def write_bar_chart(path: Path, title: str, panels: Sequence[ChartPanel]) -> str | None:
    """Grouped bar charts, one panel each, into a PNG; returns why not when there is none to write."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed; no chart written"
    panels = [panel for panel in panels if panel.groups]
    if not panels:
        return "nothing to chart"
    widest = max(len(panel.groups) for panel in panels)
    figure, axes = plt.subplots(len(panels), 1, figsize=(max(6.0, 1.1 * widest), 3.6 * len(panels)), squeeze=False)
    for axis, panel in zip(axes[:, 0], panels, strict=True):
        groups = panel.groups
        series = list(dict.fromkeys(key for group in groups for key in group.values))
        width = 0.8 / max(1, len(series))
        for index, key in enumerate(series):
            xs = [g + (index - (len(series) - 1) / 2) * width for g in range(len(groups))]
            heights = [group.values.get(key, math.nan) for group in groups]
            axis.bar(xs, heights, width, label=key)
            tops = [(group.whiskers or {}).get(key, math.nan) for group in groups]
            spans = [max(0.0, top - h) if math.isfinite(top) else 0.0 for top, h in zip(tops, heights, strict=True)]
            if any(spans):
                axis.errorbar(xs, heights, yerr=[[0.0] * len(spans), spans], fmt="none", ecolor="black", capsize=2)
        axis.set_xticks(range(len(groups)))
        axis.set_xticklabels([group.label for group in groups], fontsize=8)
        axis.set_title(panel.title, fontsize=10)
        axis.set_ylabel(panel.ylabel, fontsize=9)
        if panel.log_y:
            axis.set_yscale("log")
        axis.grid(axis="y", alpha=0.3)
        axis.legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return None
