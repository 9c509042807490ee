"""`smalltts bench-server`: the report's numbers, table and chart, over an in-process server with the tiny model."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from model.runtime.synthesizer import Synthesizer
from service.app import create_app
from service.settings import Settings
from smalltts.cli.bench_server import BenchConfig, RequestSource, bench_text, format_table, run_bench, write_chart
from smalltts.cli.main import CliError, main
from tests.service.support import live_server


def test_report_compares_batched_with_unbatched_on_mixed_requests(tmp_path: Path, synthesizer: Synthesizer) -> None:
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
        lengths_s=(0.5, 1.5),
        rounds=2,
        max_batch_size=4,
        max_wait_ms=100,
    )
    report = run_bench(config, launch)
    assert launched == [4, 1]
    batched, unbatched = report["runs"]
    assert [level["concurrency"] for level in batched["levels"]] == [1, 4]
    four = batched["levels"][1]
    assert four["requests"] == 2 * 8 and four["errors"] == 0 and four["rounds"] == 2
    # Every request's length was drawn from 0.5-1.5 s: 4 to 12 frames of 3,200 samples at 24 kHz.
    assert 16 * 4 * 3200 / 24_000 <= four["audio_s"] <= 16 * 12 * 3200 / 24_000
    assert len(four["throughput_per_round"]) == 2 and four["throughput_audio_s_per_s"] > 0
    assert 1 < four["mean_batch_size"] <= 4  # batched calls did happen
    assert four["model_calls"] < 16
    assert four["latency_p50_ms"] <= four["latency_p90_ms"] <= four["latency_p99_ms"]
    assert {"queue_wait", "inference", "encode_reference"} <= set(four["stage_mean_ms"])
    assert all(level["mean_batch_size"] == 1 for level in unbatched["levels"])
    assert set(report["batched_over_unbatched"]) == {"1", "4"}
    assert report["machine"]["cpu"] and report["machine"]["onnxruntime"]
    table = format_table(report)
    assert "| 4 | 4 | 16 |" in table and "x |" in table and report["machine"]["cpu"] in table
    assert report["model"]["trained"] is False
    assert write_chart(report, tmp_path / "server.png") is None
    assert (tmp_path / "server.png").read_bytes().startswith(b"\x89PNG")


def test_every_drawn_request_has_its_own_voice_and_a_length_in_range() -> None:
    source = RequestSource((2.0, 8.0), seed=0)
    drawn = [source.draw() for _ in range(50)]
    assert len({request.reference for request in drawn}) == 50
    assert all(2.0 <= request.duration_s <= 8.0 for request in drawn)
    assert len({request.duration_s for request in drawn}) > 40
    assert source.draw(3.0).duration_s == 3.0
    assert len(bench_text(10.0, 0).split()) > len(bench_text(2.0, 0).split())


def test_bad_levels_are_a_cli_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench-server", "--concurrency", "1,two"]) == 2
    assert main(["bench-server", "--lengths", "8-2"]) == 2
    assert "LOW <= HIGH" in capsys.readouterr().err
    with pytest.raises(CliError):
        from smalltts.cli import bench_server
        from smalltts.cli.main import build_parser

        bench_server.run(build_parser().parse_args(["bench-server", "--concurrency", "0"]))
