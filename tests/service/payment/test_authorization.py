"""The EIP-3009 authorization's exact shape, checked without I/O before anything is reserved: malformed fields
and any key beyond {signature, authorization} are refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from service.payment.authorization import parse_authorization
from tests.service.payment.test_facilitator import _payload


@pytest.mark.parametrize(
    "mutate",
    [
        lambda a: a.pop("nonce"),
        lambda a: a.update(nonce="0x1234"),
        lambda a: a.update(value="-1"),
        lambda a: a.update(value=str(2**256)),
        lambda a: a.update(to="not-an-address"),
        lambda a: a.update(validBefore=12),
    ],
)
def test_parse_authorization_refuses_malformed_fields(mutate: Callable[[dict[str, Any]], Any]) -> None:
    payload = _payload().payload
    mutate(payload["authorization"])
    with pytest.raises(ValueError, match="payload.authorization"):
        parse_authorization(payload)


@pytest.mark.parametrize("extra", [{"authorization_v2": {}}, {"extensions": 1}])
def test_the_shape_check_refuses_any_extra_key(extra: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="only signature and authorization"):
        parse_authorization({**_payload().payload, **extra})
    authorization = dict(_payload().payload["authorization"], permit2="x")
    with pytest.raises(ValueError, match="unknown fields"):
        parse_authorization({"signature": _payload().payload["signature"], "authorization": authorization})
