"""The USDC-like test token on anvil: committed artifact = source, the EIP-712 domain, both
transferWithAuthorization overloads, authorizationState, the Transfer log and USDC's revert strings (x402 maps
them to reason codes), and the EIP-2 low-s rule."""

from __future__ import annotations

import time
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import ContractLogicError
from web3.logs import DISCARD

from service.payment.devchain.compile_token import ARTIFACT_PATH, SOURCE_PATH, compile_token, source_sha256
from service.payment.devchain.launch import DevChain
from service.payment.devchain.token import load_token_artifact, token_contract
from tests.service.payment.support import TRANSFER_TYPES, Wallet, malleate, new_payer, sign_authorization, web3

VRS = "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,uint8,bytes32,bytes32)"
BYTES = "transferWithAuthorization(address,address,uint256,uint256,uint256,bytes32,bytes)"


def test_committed_artifact_is_compiled_from_the_committed_source() -> None:
    artifact = load_token_artifact(ARTIFACT_PATH)
    assert artifact.source_sha256 == source_sha256(SOURCE_PATH.read_text(encoding="utf-8"))


def test_recompiling_gives_the_committed_bytecode() -> None:
    try:
        fresh = compile_token()
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    committed = load_token_artifact(ARTIFACT_PATH)
    assert fresh["bytecode"] == committed.bytecode and fresh["abi"] == committed.abi


@pytest.fixture
def token(devchain: DevChain) -> Contract:
    return token_contract(web3(devchain), devchain.facts.token_address)


def _args(authorization: dict[str, str]) -> list[Any]:
    return [
        authorization["from"], authorization["to"], int(authorization["value"]), int(authorization["validAfter"]),
        int(authorization["validBefore"]), bytes.fromhex(authorization["nonce"][2:]),
    ]  # fmt: skip


def _sign(devchain: DevChain, payer: Wallet, **overrides: Any) -> tuple[dict[str, str], str]:
    values: dict[str, Any] = {
        "token": devchain.facts.token_address, "chain_id": 84532, "name": "USDC", "to": devchain.facts.pay_to,
        "value": 100, **overrides,
    }  # fmt: skip
    return sign_authorization(payer.key, **values)


def _with_bytes(token: Contract, authorization: dict[str, str], signature: str) -> Any:
    return token.get_function_by_signature(BYTES)(*_args(authorization), bytes.fromhex(signature[2:]))


def _with_vrs(token: Contract, authorization: dict[str, str], signature: str) -> Any:
    raw = bytes.fromhex(signature[2:])
    return token.get_function_by_signature(VRS)(*_args(authorization), raw[64], raw[:32], raw[32:64])


def test_metadata_and_eip712_domain(token: Contract, devchain: DevChain) -> None:
    functions = token.functions
    assert (functions.name().call(), functions.version().call(), functions.symbol().call()) == ("USDC", "2", "USDC")
    assert functions.decimals().call() == 6
    domain = {"name": "USDC", "version": "2", "chainId": 84532, "verifyingContract": devchain.facts.token_address}
    message = {"from": devchain.facts.pay_to, "to": devchain.facts.pay_to, "value": 0, "validAfter": 0,
               "validBefore": 0, "nonce": b"\x00" * 32}  # fmt: skip
    signable = encode_typed_data(domain, TRANSFER_TYPES, message)
    assert functions.DOMAIN_SEPARATOR().call() == signable.header  # what every EIP-712 signer hashes
    assert functions.TRANSFER_WITH_AUTHORIZATION_TYPEHASH().call() == Web3.keccak(
        text="TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 "
        "validBefore,bytes32 nonce)"
    )


@pytest.mark.parametrize("overload", [_with_bytes, _with_vrs], ids=["bytes signature", "v r s"])
def test_both_overloads_move_the_funds_once(token: Contract, devchain: DevChain, overload: Any) -> None:
    w3 = web3(devchain)
    payer = new_payer(devchain, 1_000)
    authorization, signature = _sign(devchain, payer)
    pay_to_before = token.functions.balanceOf(devchain.facts.pay_to).call()
    tx_hash = overload(token, authorization, signature).transact({"from": devchain.facts.facilitator_address})
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 1
    assert token.functions.balanceOf(payer.address).call() == 900
    assert token.functions.balanceOf(devchain.facts.pay_to).call() == pay_to_before + 100
    nonce = bytes.fromhex(authorization["nonce"][2:])
    assert token.functions.authorizationState(payer.address, nonce).call() is True
    [used] = token.events.AuthorizationUsed().process_receipt(receipt, errors=DISCARD)
    assert (used["args"]["authorizer"], used["args"]["nonce"]) == (payer.address, nonce)
    [transfer] = token.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert (transfer["args"]["from"], transfer["args"]["value"]) == (payer.address, 100)
    with pytest.raises(ContractLogicError, match="FiatTokenV2: authorization is used or canceled"):
        overload(token, authorization, signature).call()


def _revert(call: Any) -> str:
    with pytest.raises(ContractLogicError) as raised:
        call.call()
    return str(raised.value)


def test_revert_strings_match_usdc(token: Contract, devchain: DevChain) -> None:
    payer = new_payer(devchain, 1_000)
    now = int(time.time())
    cases = {
        "FiatTokenV2: authorization is not yet valid": _sign(devchain, payer, valid_after=now + 3600),
        "FiatTokenV2: authorization is expired": _sign(devchain, payer, valid_before=now - 60),
        "FiatTokenV2: invalid signature": _sign(devchain, payer, chain_id=1),  # signed for another chain
        "ERC20: transfer amount exceeds balance": _sign(devchain, payer, value=10_000),
    }
    for expected, (authorization, signature) in cases.items():
        assert expected in _revert(_with_bytes(token, authorization, signature))
    authorization, _ = cases["ERC20: transfer amount exceeds balance"]
    nonce = bytes.fromhex(authorization["nonce"][2:])
    assert token.functions.authorizationState(payer.address, nonce).call() is False  # reverted whole
    with pytest.raises(ContractLogicError, match="ERC20: transfer amount exceeds allowance"):
        token.functions.transferFrom(payer.address, devchain.facts.pay_to, 1).call()


def test_malleated_and_malformed_signatures_are_refused(token: Contract, devchain: DevChain) -> None:
    payer = new_payer(devchain, 1_000)
    authorization, signature = _sign(devchain, payer)
    twin = malleate(signature)
    signable = encode_typed_data(
        {"name": "USDC", "version": "2", "chainId": 84532, "verifyingContract": devchain.facts.token_address},
        TRANSFER_TYPES,
        {**authorization, "value": 100, "validAfter": 0, "validBefore": int(authorization["validBefore"]),
         "nonce": bytes.fromhex(authorization["nonce"][2:])},
    )  # fmt: skip
    # Off chain, the high-s twin recovers to the payer just like the original: only the low-s rule stops it.
    assert Account.recover_message(signable, signature=twin) == payer.address
    for bad in (twin, signature[:-2], signature + "00", "0x" + "00" * 65):
        assert "FiatTokenV2: invalid signature" in _revert(_with_bytes(token, authorization, bad))
    assert _with_bytes(token, authorization, signature).call() == []  # the original still works
