"""Provider lists per device, from the `devices` and `providers` settings."""

from __future__ import annotations

import pytest

from service.devices import device_providers
from service.settings import Settings


def test_device_providers() -> None:
    assert device_providers(Settings(devices="cpu")) == [["CPUExecutionProvider"]]
    assert device_providers(Settings(providers=["CPUExecutionProvider"])) == [["CPUExecutionProvider"]]
    two = device_providers(Settings(devices="cuda:0,cuda:1"))
    assert [p[0] for p in two] == [
        ("CUDAExecutionProvider", {"device_id": "0"}),
        ("CUDAExecutionProvider", {"device_id": "1"}),
    ]
    with pytest.raises(ValueError, match="devices"):
        device_providers(Settings(devices="gpu-please"))
