"""Reconciliation against the chain: a service killed between reservation and settlement loses no record of
money. A real process is SIGKILLed mid-request and the restarted service fails its row (nothing was paid);
a crash right after the settlement transaction was sent is found on chain and settled; rows of other
replicas are left alone until the chain or the clock decides."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from x402.http.clients.httpx import PaymentError

from model.runtime.synthesizer import Synthesizer
from service.app import create_app
from service.payment.chain import TokenChain
from service.payment.devchain.anvil import free_port
from service.payment.devchain.launch import DevChain
from service.payment.devchain.token import token_contract
from service.payment.ledger import Ledger, Reservation
from service.payment.reconcile import EXPIRY_GRACE_S, reconcile_ledger
from service.settings import Settings
from tests.service.payment.support import (
    Wallet,
    balance,
    live_service,
    new_payer,
    paying_client,
    sign_authorization,
    web3,
)
from tests.service.support import form

pytestmark = pytest.mark.anyio

REPO_ROOT = Path(__file__).resolve().parents[3]


def _service_env(settings: Settings, tiny_model_dir: Path) -> dict[str, str]:
    payment = settings.payment
    assert payment.facilitator_private_key is not None and payment.ledger_url is not None
    return {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "SMALLTTS_MODEL_DIR": str(tiny_model_dir),
        "SMALLTTS_DATA_DIR": str(settings.data_dir),
        "SMALLTTS_BUILTIN_VOICE": "false",
        "SMALLTTS_PAYMENT__MODE": "local",
        "SMALLTTS_PAYMENT__NETWORK": "devchain",
        "SMALLTTS_PAYMENT__RPC_URL": str(payment.rpc_url),
        "SMALLTTS_PAYMENT__ASSET": str(payment.asset),
        "SMALLTTS_PAYMENT__PAY_TO": str(payment.pay_to),
        "SMALLTTS_PAYMENT__FACILITATOR_PRIVATE_KEY": payment.facilitator_private_key.get_secret_value(),
        "SMALLTTS_PAYMENT__LEDGER_URL": payment.ledger_url,
        "SMALLTTS_PAYMENT__INSTANCE_ID": str(payment.instance_id),
    }


async def _wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


async def test_service_killed_between_reservation_and_settlement_is_reconciled_at_restart(
    tmp_path: Path,
    devchain: DevChain,
    tiny_model_dir: Path,
    synthesizer: Synthesizer,
    service_settings: Callable[..., Settings],
    reference_wav: bytes,
) -> None:
    ledger_url = f"sqlite:///{tmp_path / 'ledger.sqlite3'}"
    settings = service_settings(ledger_url, payment={"instance_id": "replica-a"})
    payer = new_payer(devchain)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "service.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.service.payment.stalled_service", str(port)],
        env=_service_env(settings, tiny_model_dir),
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    observer = Ledger(ledger_url)
    try:
        await _wait_for(lambda: _healthy(url) or process.poll() is not None, 120, "the service to start")
        assert process.poll() is None, (tmp_path / "service.log").read_text()
        async with paying_client(url, payer) as client:
            request = asyncio.create_task(
                client.post("/synthesize", params={"duration": "1"}, **form("Hi.", audio=reference_wav))
            )
            observer.open()
            await _wait_for(lambda: [e.state for e in observer.entries()] == ["reserved"], 60, "the reservation")
            process.kill()  # between reservation and settlement: synthesis never finished
            process.wait(timeout=30)
            with pytest.raises(PaymentError, match="disconnected"):  # the client lost its server mid-request
                await request
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        log.close()
        observer.close()

    with live_service(create_app(settings, synthesizers=[synthesizer])) as restarted:
        [entry] = restarted.layer.ledger.entries()
    assert (entry.state, entry.error_reason) == ("failed", "abandoned_at_restart")
    assert entry.payer == payer.address.lower() and entry.amount_atomic == 167 and entry.tx_hash is None
    assert balance(devchain, payer.address) == 1_000_000  # no audio, no money


def _reservation(payer: Wallet, nonce: str, valid_before: int, pay_to: str, token: str, owner: str) -> Reservation:
    return Reservation(
        payer=payer.address, nonce=nonce, amount_atomic=167, asset=token, network="eip155:84532", pay_to=pay_to,
        route="POST /synthesize", request_id="r", duration_s="1", valid_before=valid_before, owner=owner,
    )  # fmt: skip


async def test_a_settlement_sent_just_before_a_crash_is_found_on_chain(tmp_path: Path, devchain: DevChain) -> None:
    facts = devchain.facts
    payer = new_payer(devchain)
    authorization, signature = sign_authorization(
        payer.key, token=facts.token_address, chain_id=84532, name="USDC", to=facts.pay_to, value=167
    )
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    ledger.open()
    reservation = _reservation(
        payer, authorization["nonce"], int(authorization["validBefore"]), facts.pay_to, facts.token_address, "me"
    )
    assert ledger.reserve(reservation)
    assert ledger.transition(payer.address, authorization["nonce"], "served", from_states=("reserved",))
    # The old process broadcast transferWithAuthorization, then died before writing the outcome.
    w3 = web3(devchain)
    token = token_contract(w3, facts.token_address)
    tx_hash = token.functions.transferWithAuthorization(
        payer.address, facts.pay_to, 167, 0, int(authorization["validBefore"]),
        bytes.fromhex(authorization["nonce"][2:]), bytes.fromhex(signature[2:]),
    ).transact({"from": facts.facilitator_address})  # fmt: skip
    w3.eth.wait_for_transaction_receipt(tx_hash)

    chain = TokenChain(facts.rpc_url, facts.token_address, timeout_s=5)
    report = reconcile_ledger(ledger, chain, owner="me", now=time.time(), after_restart=True)
    entry = ledger.get(payer.address, authorization["nonce"])
    ledger.close()
    assert report.settled == [f"{payer.address.lower()}/{authorization['nonce']}"]
    assert entry is not None and entry.state == "settled"
    assert entry.tx_hash == "0x" + bytes(tx_hash).hex()


async def test_rows_are_failed_only_when_the_chain_or_the_clock_says_so(tmp_path: Path, devchain: DevChain) -> None:
    facts = devchain.facts
    chain = TokenChain(facts.rpc_url, facts.token_address, timeout_s=5)
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    ledger.open()
    now = time.time()
    valid_before = int(now) + 300
    mine_served, theirs = new_payer(devchain, 0), new_payer(devchain, 0)
    for payer, owner in ((mine_served, "me"), (theirs, "another-replica")):
        ledger.reserve(_reservation(payer, "0x" + "01" * 32, valid_before, facts.pay_to, facts.token_address, owner))
    ledger.transition(mine_served.address, "0x" + "01" * 32, "served", from_states=("reserved",))

    at_restart = reconcile_ledger(ledger, chain, owner="me", now=now, after_restart=True)
    states = {p.address.lower(): ledger.get(p.address, "0x" + "01" * 32) for p in (mine_served, theirs)}
    assert at_restart.pending == [f"{mine_served.address.lower()}/0x{'01' * 32}"]  # a tx may be in flight
    assert states[mine_served.address.lower()].state == "pending"  # type: ignore[union-attr]
    assert states[theirs.address.lower()].state == "reserved"  # type: ignore[union-attr]  # another replica's

    later = reconcile_ledger(ledger, chain, owner="me", now=valid_before + EXPIRY_GRACE_S, after_restart=False)
    ledger_states = sorted((e.state, e.error_reason) for e in ledger.entries())
    ledger.close()
    assert len(later.failed) == 2
    assert ledger_states == [("failed", "expired_unsettled")] * 2
