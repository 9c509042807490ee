"""training.precision: what `auto` resolves to, and fp16 loss scaling."""

from __future__ import annotations

import pytest
import torch

from training.precision import MixedPrecision, create_accelerator, resolve_precision


def test_explicit_precisions_pass_through_and_auto_follows_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_precision("fp16", cpu=True) == "fp16"
    monkeypatch.setattr("training.precision.cpu_facts", lambda: {"cpu": "x", "amx_bf16": True, "avx512_bf16": False})
    assert resolve_precision("auto", cpu=True) == "bf16"
    monkeypatch.setattr("training.precision.cpu_facts", lambda: {"cpu": "x", "amx_bf16": False, "avx512_bf16": False})
    assert resolve_precision("auto", cpu=True) == "fp32"
    with pytest.raises(ValueError, match="precision must be"):
        MixedPrecision("fp8", torch.device("cpu"))


def test_fp16_loss_scaling_skips_an_overflowing_step_and_halves_the_scale() -> None:
    accelerator = create_accelerator(cpu=True)
    precision = MixedPrecision("fp16", torch.device("cpu"))
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    start = precision.loss_scale()
    assert start is not None
    weights = model.weight.detach().clone()
    with precision.autocast():
        loss = model(torch.ones(1, 2)).float().sum() * float("inf")
    precision.backward(loss, accelerator)
    precision.step(optimizer, model.parameters(), 1.0, accelerator)
    assert torch.equal(model.weight, weights)  # skipped
    assert precision.loss_scale() == start / 2
    optimizer.zero_grad()
    with precision.autocast():
        out = model(torch.ones(1, 2))
        assert out.dtype == torch.float16
    precision.backward(out.float().sum(), accelerator)
    grad_norm = precision.step(optimizer, model.parameters(), 1.0, accelerator)
    assert grad_norm is not None and torch.isfinite(grad_norm)  # the norm of the unscaled gradients
    assert not torch.equal(model.weight, weights)
    restored = MixedPrecision("fp16", torch.device("cpu"))
    restored.load_state_dict(precision.state_dict())
    assert restored.loss_scale() == precision.loss_scale()
