"""The embedded dev chain: anvil on loopback with chain id 84532, the token deployed, the payer funded, the
facts file written while it runs and removed when it stops."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from web3 import Web3

from service.payment.devchain.anvil import rpc_chain_id
from service.payment.devchain.launch import PAYER_FUNDS_ATOMIC, DevChainFacts, start_devchain
from service.payment.devchain.token import balance_of
from tests.conftest import require_anvil


def test_devchain_facts_describe_a_live_funded_chain(tmp_path: Path) -> None:
    require_anvil()
    with start_devchain(tmp_path) as chain:
        facts = DevChainFacts.read(tmp_path / "devchain.json")
        assert facts == chain.facts
        assert facts.rpc_url.startswith("http://127.0.0.1:")
        assert (facts.chain_id, facts.network, facts.token_name) == (84532, "eip155:84532", "USDC")
        w3 = Web3(Web3.HTTPProvider(facts.rpc_url))
        assert balance_of(w3, facts.token_address, facts.payer_address) == PAYER_FUNDS_ATOMIC
        assert Web3.to_checksum_address(facts.payer_address) == facts.payer_address
        assert (tmp_path / "devchain" / "anvil.log").is_file()
    assert not (tmp_path / "devchain.json").exists()  # a stale file would point scripts at a dead chain
    assert not chain.node.is_running()
    with pytest.raises(httpx.HTTPError):
        rpc_chain_id(facts.rpc_url)
