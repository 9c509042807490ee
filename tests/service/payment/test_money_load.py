"""A load test of money (issue 14): several payers at once against the live service and anvil, with replays,
forged headers and an under-funded payer mixed in. Bounded in count (about 40 requests) and loopback only.

Afterwards the books must balance three ways: audio answers = settled ledger rows = Transfer events to pay_to,
with equal sums; no settlement transaction failed; no 5xx; and no audio without a settled payment.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from web3 import Web3

from model.runtime.synthesizer import Synthesizer
from service.app import create_app
from service.payment.devchain.launch import DevChain
from service.payment.devchain.token import token_contract
from service.settings import Settings
from tests.service.payment.support import Wallet, decode_header, encode_header, live_service, new_payer, web3
from tests.service.payment.test_middleware import _sdk_payment
from tests.service.support import form

pytestmark = pytest.mark.anyio

PRICE = 167  # 1 s
PAYERS = 4
PAID_PER_PAYER = 5
FORGED = 5
UNDERFUNDED_TRIES = 4
CONCURRENCY = 12


def _forge(header: str, victim: Wallet) -> str:
    """The attacker's own signature over an authorization that names the victim as payer."""
    payload = decode_header(header)
    attacker = Account.create()
    payload["payload"]["signature"] = "0x" + bytes(Account.unsafe_sign_hash(b"\x11" * 32, attacker.key).signature).hex()
    payload["payload"]["authorization"]["from"] = victim.address
    return encode_header(payload)


async def test_paid_requests_under_load_balance_the_books(
    tmp_path: Path,
    devchain: DevChain,
    synthesizer: Synthesizer,
    service_settings: Callable[..., Settings],
    reference_wav: bytes,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = service_settings(f"sqlite:///{tmp_path / 'ledger.sqlite3'}", max_queue_size=256)
    w3 = web3(devchain)
    facilitator = Account.from_key(devchain.facilitator_key).address
    # Headroom: while a settlement is mined but not yet recorded, its amount counts twice (see ledger.py).
    payers = [new_payer(devchain, amount_atomic=2 * PRICE * PAID_PER_PAYER) for _ in range(PAYERS)]
    underfunded = new_payer(devchain, amount_atomic=PRICE)
    rng = random.Random(14)

    with live_service(create_app(settings, synthesizers=[synthesizer])) as service:
        async with httpx.AsyncClient(base_url=service.url, timeout=120) as client:
            unpaid = await client.post("/synthesize", params={"duration": "1"}, **form("Load."))
            required = decode_header(unpaid.headers["PAYMENT-REQUIRED"])
            plan: list[tuple[str, str]] = []  # (kind, header)
            for payer in payers:
                for _ in range(PAID_PER_PAYER):
                    header = await _sdk_payment(required, payer)
                    plan += [("paid", header), ("replay", header)]
            plan += [("forged", _forge(plan[0][1], payers[0])) for _ in range(FORGED)]
            plan += [("underfunded", await _sdk_payment(required, underfunded)) for _ in range(UNDERFUNDED_TRIES)]
            rng.shuffle(plan)
            first_block = w3.eth.block_number
            gate = asyncio.Semaphore(CONCURRENCY)

            async def send(header: str) -> httpx.Response:
                async with gate:
                    return await client.post(
                        "/synthesize", params={"duration": "1"}, headers={"PAYMENT-SIGNATURE": header},
                        **form("Load.", audio=reference_wav),
                    )  # fmt: skip

            replies = await asyncio.gather(*(send(header) for _, header in plan))
        ledger_rows = service.layer.ledger.entries(limit=10_000)

    # --- what the chain says ------------------------------------------------------------------------------
    token = token_contract(w3, devchain.facts.token_address)
    our_payers = {Web3.to_checksum_address(p.address) for p in [*payers, underfunded]}
    transfers = [
        log
        for log in token.events.Transfer().get_logs(
            from_block=first_block + 1, to_block=w3.eth.block_number, argument_filters={"to": devchain.facts.pay_to}
        )
        if log["args"]["from"] in our_payers
    ]
    settlements = []  # every transferWithAuthorization the facilitator sent meanwhile, whoever's it was
    for number in range(first_block + 1, w3.eth.block_number + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"] != facilitator or tx["to"] != token.address:
                continue
            function, _ = token.decode_function_input(tx["input"])
            if function.fn_name == "transferWithAuthorization":
                settlements.append(w3.eth.get_transaction_receipt(tx["hash"])["status"])
    sent = len(settlements)

    # --- what the service said ------------------------------------------------------------------------------
    served = [r for r in replies if r.status_code == 200]
    refused = Counter(
        (r.json()["error"] if isinstance(r.json()["error"], str) else r.json()["error"]["code"])
        for r in replies
        if r.status_code != 200
    )
    settled = [e for e in ledger_rows if e.state == "settled"]
    receipts = [decode_header(r.headers["PAYMENT-RESPONSE"]) for r in served]
    with capsys.disabled():
        print(
            f"\nmoney load test: {len(plan)} requests, {PAYERS + 1} payers, {len(served)} served, "
            f"{len(settled)} settled, {len(transfers)} transfers to pay_to "
            f"({sum(t['args']['value'] for t in transfers)} atomic), {sent} settlement transactions; "
            f"refused: {dict(sorted(refused.items()))}"
        )

    figures = (len(served), len(settled), len(transfers), sent, dict(refused))  # shown when an assertion fails
    assert not [r.text for r in replies if r.status_code >= 500], figures
    assert all(r.headers["content-type"] == "audio/wav" for r in served)
    assert len(served) == len(settled) == len(transfers) == PAYERS * PAID_PER_PAYER + 1, figures
    assert sum(e.amount_atomic for e in settled) == sum(t["args"]["value"] for t in transfers) == PRICE * len(served)
    assert settlements == [1] * len(settled), settlements  # no failed (or wasted) settlement transaction
    assert not [(e.state, e.error_reason) for e in ledger_rows if e.state != "settled"], figures
    # Nothing served without a settled payment: every receipt names a settled row's transaction and a transfer.
    settled_txs = {e.tx_hash for e in settled}
    transfer_txs = {"0x" + bytes(t["transactionHash"]).hex() for t in transfers}
    assert {r["transaction"] for r in receipts} == settled_txs == transfer_txs and all(r["success"] for r in receipts)
    assert refused == Counter(
        {
            "invalid_exact_evm_nonce_already_used": PAYERS * PAID_PER_PAYER,
            "invalid_exact_evm_payload_signature": FORGED,
            "invalid_exact_evm_insufficient_balance": UNDERFUNDED_TRIES - 1,
        }
    )
