from __future__ import annotations

import socket
from collections.abc import Callable

import pytest

from service.payment.chain import ChainUnavailableError, TokenChain

TOKEN = "0x" + "11" * 20
PAYER = "0x" + "22" * 20
NONCE = "0x" + "33" * 32
READS: list[Callable[[TokenChain], object]] = [
    lambda chain: chain.chain_id(),
    lambda chain: chain.client_version(),
    lambda chain: chain.has_code(PAYER),
    lambda chain: chain.payer_funds(PAYER),
    lambda chain: chain.authorization_used(PAYER, NONCE),
    lambda chain: chain.find_authorization_tx(PAYER, NONCE),
    lambda chain: chain.receipt_status("0x" + "44" * 32),
]


def _unreachable_chain() -> TokenChain:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])  # closed again when the block ends: connections are refused
    return TokenChain(f"http://127.0.0.1:{port}/v2/SECRET-KEY", TOKEN, timeout_s=2)


@pytest.mark.parametrize("read", READS)
def test_an_unreachable_rpc_is_the_one_unavailable_error(read: Callable[[TokenChain], object]) -> None:
    with pytest.raises(ChainUnavailableError, match=r"^RPC http://127\.0\.0\.1:\d+/… unreachable: "):
        read(_unreachable_chain())


def test_the_rpc_key_is_never_in_the_error() -> None:
    # requests quotes the path alone ("url: /v2/SECRET-KEY"); startup errors and logs carry this text.
    with pytest.raises(ChainUnavailableError) as caught:
        _unreachable_chain().chain_id()
    assert "SECRET-KEY" not in str(caught.value)
