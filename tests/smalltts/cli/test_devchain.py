"""`smalltts devchain`: the dev chain alone, and provisioning a running anvil (what the compose stack does)."""

from __future__ import annotations

from pathlib import Path

from web3 import Web3

from service.payment.devchain.anvil import start_anvil
from service.payment.devchain.launch import PAYER_FUNDS_ATOMIC, DevChainFacts
from service.payment.devchain.token import balance_of
from smalltts.cli.main import main
from tests.conftest import require_anvil


def test_deploy_on_a_running_node_is_idempotent_and_writes_the_facts(tmp_path: Path) -> None:
    require_anvil()
    node = start_anvil()
    try:
        assert main(["devchain", "deploy", "--rpc-url", node.rpc_url, "--state-dir", str(tmp_path)]) == 0
        first = DevChainFacts.read(tmp_path / "devchain.json")
        assert main(["devchain", "deploy", "--rpc-url", node.rpc_url, "--state-dir", str(tmp_path)]) == 0
        second = DevChainFacts.read(tmp_path / "devchain.json")
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        funded = balance_of(w3, second.token_address, second.payer_address)
    finally:
        node.stop()
    assert first == second  # the same token, found again rather than deployed twice
    assert first.token_address == "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # what docker/compose.yml expects
    assert funded == PAYER_FUNDS_ATOMIC  # topped up to the same amount, not doubled
