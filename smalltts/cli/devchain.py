"""`smalltts devchain`: the local dev chain on its own (`smalltts run` starts one by itself).

    smalltts devchain start [--port 8545] [--state-dir .smalltts]       # anvil + test token + funded payer
    smalltts devchain deploy --rpc-url http://127.0.0.1:8545 [--state-dir DIR]

`start` runs anvil (npm @foundry-rs/anvil) on loopback until Ctrl-C; `deploy` puts the test token on a node
that already runs (the compose stack's anvil container) and funds the dev payer; both write the chain's
facts (RPC URL, chain id, token, pay_to, payer address and key) to <state-dir>/devchain.json. Then serve
with SMALLTTS_PAYMENT__RPC_URL / __ASSET / __PAY_TO / __FACILITATOR_PRIVATE_KEY from that file.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

import httpx
from requests import RequestException

from service.payment.devchain.anvil import AnvilError
from service.payment.devchain.launch import (
    DEFAULT_PORT,
    FACILITATOR_KEY,
    FACTS_FILE,
    STATE_DIR,
    DevChainFacts,
    deploy_devchain_token,
    start_devchain,
)
from smalltts.cli.main import CliError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("devchain", help="run or provision the local dev chain (anvil + test USDC)")
    actions = parser.add_subparsers(dest="devchain_action", required=True, metavar="ACTION")
    start = actions.add_parser("start", help="run anvil with the test token until Ctrl-C")
    start.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"RPC port on 127.0.0.1 (default {DEFAULT_PORT})")
    start.add_argument("--state-dir", type=Path, default=STATE_DIR, metavar="DIR", help="where devchain.json goes")
    start.set_defaults(handler=run_start)
    deploy = actions.add_parser("deploy", help="deploy the test token on a running node and fund the dev payer")
    deploy.add_argument("--rpc-url", required=True, help="JSON-RPC URL of the node (anvil, chain id 84532)")
    deploy.add_argument("--state-dir", type=Path, default=STATE_DIR, metavar="DIR", help="where devchain.json goes")
    deploy.set_defaults(handler=run_deploy)


def run_start(args: argparse.Namespace) -> int:
    try:
        with start_devchain(args.state_dir, port=args.port) as chain:
            sys.stdout.write(_describe(chain.facts, args.state_dir) + "smalltts: Ctrl-C stops the chain\n")
            sys.stdout.flush()
            threading.Event().wait()  # until KeyboardInterrupt; the context stops anvil
    except AnvilError as exc:
        raise CliError(f"cannot start the dev chain: {exc}") from None
    return 0


def run_deploy(args: argparse.Namespace) -> int:
    try:
        facts = deploy_devchain_token(args.rpc_url)
    except (RequestException, httpx.HTTPError, ConnectionError) as exc:
        raise CliError(f"cannot reach {args.rpc_url}: {exc}") from None
    args.state_dir.mkdir(parents=True, exist_ok=True)
    (args.state_dir / FACTS_FILE).write_text(facts.to_json(), encoding="utf-8")
    sys.stdout.write(_describe(facts, args.state_dir))
    return 0


def _describe(facts: DevChainFacts, state_dir: Path) -> str:
    return (
        f"smalltts: dev chain {facts.rpc_url} (chain id {facts.chain_id}); test USDC {facts.token_address}\n"
        f"smalltts: dev payer {facts.payer_address}, key {facts.payer_key} (anvil's public test key)\n"
        f"smalltts: serve with SMALLTTS_PAYMENT__RPC_URL={facts.rpc_url} SMALLTTS_PAYMENT__ASSET={facts.token_address}"
        f" SMALLTTS_PAYMENT__PAY_TO={facts.pay_to} SMALLTTS_PAYMENT__FACILITATOR_PRIVATE_KEY={FACILITATOR_KEY}\n"
        f"smalltts: facts in {state_dir / FACTS_FILE}\n"
    )
