"""Property-based mutations of a real payment header against the live app (issue 14): whatever a client does to
the header, the answer is never a 5xx, never audio and never a settlement.

The shared paid_service runs without rate limits (many probes come from one client). The header was spent once
first, legitimately: a mutation that keeps its authorization is a replay, and one that
changes the authorization breaks its signature, so no mutation may buy anything.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import httpx
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.payment.devchain.launch import DevChain
from tests.service.payment.support import LiveService, balance, decode_header, new_payer, web3
from tests.service.payment.test_middleware import _sdk_payment
from tests.service.support import form

json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**300), max_value=2**300), st.text(max_size=80),
    st.from_regex(r"0x[0-9a-fA-F]{0,140}", fullmatch=True),
)  # fmt: skip
json_value = st.recursive(
    json_leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            paths += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            paths += _paths(value, (*prefix, index))
    return paths


def _set(tree: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent = tree
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return tree


@st.composite
def mutated_payload(draw: st.DrawFn, original: dict[str, Any]) -> str:
    tree = copy.deepcopy(original)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(tree)
        path = draw(st.sampled_from(paths))
        action = draw(st.sampled_from(["replace", "delete", "add", "case"]))
        parent = tree
        for step in path[:-1]:
            parent = parent[step]
        if action == "replace":
            tree = _set(tree, path, draw(json_value))
        elif action == "delete" and path:
            del parent[path[-1]]
        elif action == "add":
            target = parent[path[-1]] if path else tree
            if isinstance(target, dict):
                target[draw(st.sampled_from(["permit2Authorization", "extra", "x", "authorization", "from"]))] = draw(
                    json_value
                )
        elif action == "case" and path and isinstance(parent[path[-1]], str):
            parent[path[-1]] = parent[path[-1]].upper() if draw(st.booleans()) else parent[path[-1]].lower()
    raw = json.dumps(tree).encode()
    if draw(st.booleans()):
        return base64.b64encode(raw).decode()
    cut = draw(st.integers(min_value=0, max_value=len(raw)))
    noise = draw(st.binary(max_size=8))
    return base64.b64encode(raw[:cut] + noise + raw[cut:]).decode()


def test_mutated_payment_headers_never_get_a_5xx_audio_or_a_settlement(
    paid_service: LiveService, devchain: DevChain, reference_wav: bytes
) -> None:
    import anyio

    payer = new_payer(devchain)
    with httpx.Client(base_url=paid_service.url, timeout=60) as client:
        unpaid = client.post("/synthesize", params={"duration": "1"}, **form("Fuzz."))
        header = anyio.run(_sdk_payment, decode_header(unpaid.headers["PAYMENT-REQUIRED"]), payer)
        spent = client.post(
            "/synthesize", params={"duration": "1"}, headers={"PAYMENT-SIGNATURE": header},
            **form("Fuzz.", audio=reference_wav),
        )  # fmt: skip
        assert spent.status_code == 200
        original = decode_header(header)
        facilitator = Account.from_key(devchain.facilitator_key).address
        transactions = web3(devchain).eth.get_transaction_count(facilitator)
        paid = balance(devchain, payer.address)
        completed = paid_service.completed_requests()

        @settings(
            max_examples=60, deadline=None, derandomize=True, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        )  # fmt: skip
        @given(mutated=mutated_payload(original), legacy=st.booleans())
        def probe(mutated: str, legacy: bool) -> None:
            name = "X-PAYMENT" if legacy else "PAYMENT-SIGNATURE"
            reply = client.post(
                "/synthesize", params={"duration": "1"}, headers={name: mutated}, **form("Fuzz.", audio=reference_wav)
            )
            assert reply.status_code < 500, reply.text
            assert reply.status_code != 200 and reply.headers["content-type"] == "application/json"

        probe()

    assert web3(devchain).eth.get_transaction_count(facilitator) == transactions  # no settlement was sent
    assert balance(devchain, payer.address) == paid
    assert paid_service.completed_requests() == completed  # nor any synthesis run
    settled = [e for e in paid_service.layer.ledger.entries(limit=10_000) if e.payer == payer.address.lower()]
    assert [e.state for e in settled] == ["settled"]
