"""`smalltts bench-server`: the report's numbers and table, over an in-process server with the tiny model."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from model.runtime.synthesizer import Synthesizer
from service.app import create_app
from service.settings import Settings
from smalltts.cli.bench_server import BenchConfig, format_table, run_bench
from smalltts.cli.main import CliError, main
from tests.service.support import live_server


def test_report_compares_batched_with_unbatched(tmp_path: Path, synthesizer: Synthesizer) -> None:
    launched: list[int] = []

    @contextlib.contextmanager
    def launch(config: BenchConfig, max_batch_size: int) -> Iterator[str]:
        launched.append(max_batch_size)
        settings = Settings(
            data_dir=tmp_path / f"data-{max_batch_size}",
            builtin_voice=False,
            max_batch_size=max_batch_size,
            max_wait_ms=config.max_wait_ms,
        )
        with live_server(create_app(settings, synthesizers=[synthesizer])) as url:
            yield url

    config = BenchConfig(
        model_dir=Path("unused"),
        levels=(1, 4),
        requests_per_client=2,
        duration_s=1.0,
        max_batch_size=4,
        max_wait_ms=100,
    )
    report = run_bench(config, launch)
    assert launched == [4, 1]
    batched, unbatched = report["runs"]
    assert [level["concurrency"] for level in batched["levels"]] == [1, 4]
    four = batched["levels"][1]
    assert four["requests"] == 8 and four["errors"] == 0
    assert four["audio_s"] == pytest.approx(8 * 8 * 3200 / 24_000, abs=1e-3)
    assert four["throughput_audio_s_per_s"] > 0
    assert 1 < four["mean_batch_size"] <= 4  # batched calls did happen
    assert four["model_calls"] < 8
    assert all(level["mean_batch_size"] == 1 for level in unbatched["levels"])
    assert set(report["batched_over_unbatched"]) == {"1", "4"}
    table = format_table(report)
    assert "| 4 | 4 | 8 |" in table and "x |" in table
    assert report["model"]["trained"] is False


def test_bad_levels_are_a_cli_error() -> None:
    assert main(["bench-server", "--concurrency", "1,two"]) == 2
    with pytest.raises(CliError):
        from smalltts.cli import bench_server
        from smalltts.cli.main import build_parser

        bench_server.run(build_parser().parse_args(["bench-server", "--concurrency", "0"]))
