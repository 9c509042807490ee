"""`smalltts serve` / `smalltts run`: settings from flags over the environment, the announcement, a real start."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import httpx
import pytest

from model.runtime.synthesizer import Synthesizer
from smalltts.cli.bench_server import BenchConfig, served
from smalltts.cli.main import CliError, build_parser
from smalltts.cli.serve import announce, build_settings


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SMALLTTS_PORT", "9000")
    monkeypatch.setenv("SMALLTTS_MAX_BATCH_SIZE", "3")
    settings = build_settings(parse("serve", "--port", "8123", "--workers", "2", "--model", str(tmp_path)))
    assert settings.port == 8123  # the flag wins
    assert settings.max_batch_size == 3  # the environment fills the rest
    assert settings.workers == 2
    assert settings.model_dir == tmp_path


def test_run_has_host_port_and_model_flags() -> None:
    args = parse("run", "--host", "0.0.0.0", "--port", "8001")
    assert (args.host, args.port, args.model) == ("0.0.0.0", 8001, None)


def test_invalid_settings_are_one_cli_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMALLTTS_MAX_BATCH_SIZE", "zero")
    with pytest.raises(CliError, match="max_batch_size"):
        build_settings(parse("serve"))


def test_announce_says_untrained_plainly(capsys: pytest.CaptureFixture[str], synthesizer: Synthesizer) -> None:
    announce(build_settings(parse("run", "--port", "8042")), synthesizer)
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8042" in out
    assert "UNTRAINED" in out
    assert synthesizer.model_id in out
    assert "(tiny, fp32)" in out  # preset and precision (int8 / fp16 for a `smalltts optimize` folder)


@pytest.mark.slow
def test_serve_starts_a_real_server(tiny_model_dir: Path) -> None:
    # `served` runs `python -m smalltts serve ...` in a subprocess and waits for /ready.
    with served(BenchConfig(model_dir=tiny_model_dir, startup_timeout_s=120), max_batch_size=4) as url:
        assert httpx.get(f"{url}/health", timeout=10).text == "ok"
        ready = httpx.get(f"{url}/ready", timeout=10).json()
    assert ready["status"] == "ready"


def test_run_refuses_a_model_whose_default_steps_exceed_the_maximum(
    monkeypatch: pytest.MonkeyPatch, ddim_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from smalltts.cli.main import main

    monkeypatch.setenv("SMALLTTS_MAX_STEPS", "8")
    assert main(["run", "--port", "0", "--model", str(ddim_model_dir)]) == 2  # 0: whatever else serves on 8000
    last = capsys.readouterr().err.splitlines()[-1]  # after the "loaded model" log line
    assert last.startswith("smalltts: error: the model's default is 12") and "SMALLTTS_MAX_STEPS" in last


@pytest.mark.parametrize("command", ["run", "serve"])
def test_a_taken_port_is_one_line_before_any_model_chain_or_file(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from smalltts.cli.main import main

    monkeypatch.chdir(tmp_path)  # the dev chain would write .smalltts/ here
    with socket.socket() as first_run:
        first_run.bind(("127.0.0.1", 0))
        first_run.listen()
        port = first_run.getsockname()[1]
        # A model folder that does not exist: the refusal must come before the model is even looked for.
        assert main([command, "--port", str(port), "--model", str(tmp_path / "no-model")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"smalltts: error: port {port} is taken")
    assert list(tmp_path.iterdir()) == []  # no .smalltts/devchain.json, no anvil log, no ledger
