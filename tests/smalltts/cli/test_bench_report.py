from __future__ import annotations

import math
from pathlib import Path

import pytest

from smalltts.cli.bench_report import BarGroup, ChartPanel, cpu_model_name, summarize, write_bar_chart


def test_summary_percentiles() -> None:
    summary = summarize([float(x) for x in range(1, 101)])
    assert (summary.n, summary.min, summary.max, summary.mean) == (100, 1.0, 100.0, 50.5)
    assert summary.p50 == pytest.approx(50.5) and summary.p90 == pytest.approx(90.1)
    assert summary.p99 == pytest.approx(99.01)
    one = {"n": 1, "p50": 7.0, "p90": 7.0, "p99": 7.0, "mean": 7.0, "min": 7.0, "max": 7.0}
    assert summarize([7.0]).as_dict() == one


def test_an_empty_summary_says_so() -> None:
    summary = summarize([])
    assert summary.n == 0 and math.isnan(summary.p50)
    assert summary.as_dict() == {"n": 0}


def test_cpu_model_name(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\nprocessor\t: 1\n")
    assert cpu_model_name(cpuinfo) == "AMD EPYC 7B13"
    assert cpu_model_name(tmp_path / "missing")  # falls back to what platform knows


def test_bar_chart_is_a_png(tmp_path: Path) -> None:
    groups = [BarGroup("a", {"fp32": 10.0, "int8": 4.0}, {"fp32": 12.0}), BarGroup("b", {"fp32": 20.0})]
    path = tmp_path / "chart.png"
    panels = [ChartPanel("ms", "ms", groups, log_y=True), ChartPanel("x", "x", [])]
    assert write_bar_chart(path, "title", panels) is None
    assert path.read_bytes().startswith(b"\x89PNG")
    assert write_bar_chart(tmp_path / "none.png", "title", [ChartPanel("x", "x", [])]) == "nothing to chart"
