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

from service.payment.devchain.anvil import find_anvil, free_port, rpc_chain_id
from service.payment.devchain.launch import DevChainFacts
from smalltts.cli.main import main
from tests.service.support import tone_wav

REPO_ROOT = Path(__file__).resolve().parents[3]


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"`smalltts run` did not come up (exit status {process.poll()})")


def test_run_starts_the_dev_chain_and_pay_say_pays_it(tmp_path: Path, tiny_model_dir: Path) -> None:
    if find_anvil() is None:
        pytest.skip("anvil not installed: run `npm ci` at the repository root")
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
    try:
        _wait_healthy(url, process, timeout_s=120)
        facts = DevChainFacts.read(tmp_path / ".smalltts" / "devchain.json")
        printed = output.read_text()
        assert facts.payer_key in printed and "pay-say" in printed and "x402Client" in printed
        assert rpc_chain_id(facts.rpc_url) == 84532

        reference = tmp_path / "voice.wav"
        reference.write_bytes(tone_wav(1.0))
        out = tmp_path / "hello.wav"
        status = main(
            ["pay-say", "Hello there.", "--ref", str(reference), "--duration", "1.5", "--url", url,
             "--devchain", str(tmp_path / ".smalltts" / "devchain.json"), "--out", str(out)]
        )  # fmt: skip
        assert status == 0
        audio, rate_hz = sf.read(out)
        assert rate_hz == 24_000 and len(audio) > 0
        refused = main(
            ["pay-say", "Hello.", "--ref", str(reference), "--duration", "1.5", "--url", url, "--max-atomic", "10",
             "--devchain", str(tmp_path / ".smalltts" / "devchain.json"), "--out", str(tmp_path / "no.wav")]
        )  # fmt: skip
        assert refused == 2 and not (tmp_path / "no.wav").exists()  # 251 units is over the payer's own cap
    finally:
        # SIGTERM, as systemd or docker stop a service: the dev chain must go down with it (Ctrl-C is SIGINT).
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert not (tmp_path / ".smalltts" / "devchain.json").exists()
    with pytest.raises(httpx.HTTPError):
        rpc_chain_id(facts.rpc_url)  # anvil stopped with the service


def test_pay_say_without_a_key_or_dev_chain_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SMALLTTS_PAYER_KEY", raising=False)
    reference = tmp_path / "voice.wav"
    reference.write_bytes(tone_wav(1.0))
    status = main(["pay-say", "Hi.", "--ref", str(reference), "--devchain", str(tmp_path / "missing.json")])
    assert status == 2
    assert "no payer key" in capsys.readouterr().err
