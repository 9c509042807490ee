"""`smalltts run` with the default payment settings starts the dev chain, and `smalltts pay-say` pays the running
service with the official x402 client: a real process, a real anvil, a real payment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import soundfile as sf

from service.payment.devchain.anvil import free_port, rpc_chain_id
from service.payment.devchain.launch import DevChainFacts
from smalltts.cli.main import main
from tests.conftest import require_anvil
from tests.service.support import tone_wav

REPO_ROOT = Path(__file__).resolve().parents[3]


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"`smalltts run` did not come up (exit status {process.poll()}):\n{log.read_text()[-3000:]}")


def test_run_starts_the_dev_chain_and_pay_say_pays_it(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_anvil()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMALLTTS_")}
    env.update(PYTHONPATH=str(REPO_ROOT), SMALLTTS_BUILTIN_VOICE="false", HF_HUB_OFFLINE="1")
    output = tmp_path / "run.log"
    with output.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "smalltts", "run", "--port", str(port), "--model", str(tiny_model_dir)],
            cwd=tmp_path,  # .smalltts/ lands here
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    facts_file = tmp_path / ".smalltts" / "runs" / str(port) / "devchain.json"
    try:
        _wait_healthy(url, process, output, timeout_s=120)
        facts = DevChainFacts.read(facts_file)
        printed = output.read_text()
        assert facts.payer_key in printed and "pay-say" in printed and "x402Client" in printed
        assert rpc_chain_id(facts.rpc_url) == 84532

        # A second run on the same port says so in one line, before touching any chain or file.
        second = subprocess.run(
            [sys.executable, "-m", "smalltts", "run", "--port", str(port), "--model", str(tiny_model_dir)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert second.returncode == 2 and second.stdout == ""
        assert second.stderr.count("\n") == 1 and f"port {port} is taken" in second.stderr
        assert DevChainFacts.read(facts_file) == facts

        reference = tmp_path / "voice.wav"
        reference.write_bytes(tone_wav(1.0))
        out = tmp_path / "hello.flac"
        # No --devchain: the payer and the test token come from the service (GET /v1/devchain), whatever the
        # current folder; the suffix asks the service for FLAC.
        status = main(["pay-say", "Hello there.", "--ref", str(reference), "--duration", "1.5", "--url", url,
                       "--seed", "7", "--out", str(out)])  # fmt: skip
        assert status == 0
        said = capsys.readouterr()
        assert "paid 0.000251 USDC (251 units)" in said.out and "transaction 0x" in said.out and "seed 7" in said.out
        assert "UNTRAINED" in said.err  # the random tiny model, as the service's X-Smalltts-Trained says
        assert sf.info(out).format == "FLAC"
        audio, rate_hz = sf.read(out)
        assert rate_hz == 24_000 and len(audio) > 0
        refused = main(
            ["pay-say", "Hello.", "--ref", str(reference), "--duration", "1.5", "--url", url, "--max-atomic", "10",
             "--out", str(tmp_path / "no.wav")]
        )  # fmt: skip
        assert refused == 2 and not (tmp_path / "no.wav").exists()
        assert "asks 251 units (0.000251 USDC) for 1.5 s, above --max-atomic 10" in capsys.readouterr().err
    finally:
        # SIGTERM, as systemd or docker stop a service: the dev chain must go down with it (Ctrl-C is SIGINT).
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert not facts_file.exists()
    with pytest.raises(httpx.HTTPError):
        rpc_chain_id(facts.rpc_url)  # anvil stopped with the service


def test_pay_say_without_a_key_or_dev_chain_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SMALLTTS_PAYER_KEY", raising=False)
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert main(["pay-say", "Hi.", "--url", url]) == 2
    assert f"cannot reach {url}" in capsys.readouterr().err
    assert main(["pay-say", "Hi.", "--devchain", str(tmp_path / "missing.json")]) == 2
    assert "dev-chain facts not found" in capsys.readouterr().err
    assert main(["pay-say", "Hi.", "--out", str(tmp_path / "x.mp4")]) == 2
    assert "must end in .wav, .flac or .ogg" in capsys.readouterr().err
    assert main(["pay-say", "Hi.", "--max-atomic", "-5", "--url", url]) == 2
    assert "--max-atomic must be >= 0" in capsys.readouterr().err


def test_a_run_removes_only_its_own_facts(tmp_path: Path) -> None:
    from service.payment.devchain.launch import remove_if_ours

    facts = tmp_path / "devchain.json"
    facts.write_text("another run's facts")
    remove_if_ours(facts, "what this run wrote")
    assert facts.read_text() == "another run's facts"
    remove_if_ours(facts, "another run's facts")
    assert not facts.exists()
    remove_if_ours(facts, "gone already")  # no error
