"""Numeric precision of a training run: which one `auto` means on this machine, and the autocast + fp16 loss
scaling every trainer uses (the same on a CPU and a GPU), plus the Accelerator that places the modules."""

from __future__ import annotations

import contextlib
import platform
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.config import Precision


def cpu_facts() -> dict[str, Any]:
    """This CPU's model name and whether it has bf16 matrix units (AMX tiles, AVX-512 bf16), from /proc/cpuinfo."""
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass
    return {"cpu": model, "amx_bf16": "amx_bf16" in flags, "avx512_bf16": "avx512_bf16" in flags}


def resolve_precision(value: Precision, *, cpu: bool) -> str:
    """auto = bf16 on a GPU that supports it (fp16 with loss scaling on one that does not), and bf16 on a CPU with
    bf16 matrix units (measured on one with AMX: a demo teacher step 1.5x faster, `python -m
    training.precision_bench`); fp32 elsewhere, where bf16 is emulated and slower."""
    if value == "auto":
        on_gpu = not cpu and torch.cuda.is_available()
        if on_gpu:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        facts = cpu_facts()
        return "bf16" if facts["amx_bf16"] or facts["avx512_bf16"] else "fp32"
    return value


def create_accelerator(*, cpu: bool = False) -> Any:
    """An Accelerator (imported lazily: accelerate is a train-only dependency). cpu=True forces the CPU.

    accelerate places modules and wraps them in DDP; autocast and loss scaling are `MixedPrecision`'s, the same
    on every device (accelerate's fp16 is a silent no-op on a CPU)."""
    from accelerate import Accelerator

    return Accelerator(cpu=cpu, mixed_precision="no")


class MixedPrecision:
    """bf16 / fp16 autocast, and for fp16 a dynamic loss scale (torch.amp.GradScaler): a step whose gradients
    overflow is skipped and the scale halves; it doubles again after 2,000 clean steps."""

    def __init__(self, precision: str, device: torch.device) -> None:
        if precision not in ("bf16", "fp16", "fp32"):
            raise ValueError(f"precision must be bf16, fp16 or fp32, got {precision!r}")
        self.precision = precision
        self.device_type = device.type
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor, accelerator: Any) -> None:
        accelerator.backward(self.scaler.scale(loss) if self.scaler is not None else loss)

    def step(
        self, optimizer: torch.optim.Optimizer, parameters: Iterable[nn.Parameter], max_norm: float, accelerator: Any
    ) -> torch.Tensor | None:
        """Unscales (fp16), clips to max_norm (0 = off), steps; returns the gradient norm before clipping."""
        return self.step_all([(optimizer, parameters)], max_norm, accelerator)[0]

    def step_all(
        self,
        groups: list[tuple[torch.optim.Optimizer, Iterable[nn.Parameter]]],
        max_norm: float,
        accelerator: Any,
    ) -> list[torch.Tensor | None]:
        """`step` for optimizers fed by one backward pass: all unscaled with the same scale, then one update."""
        norms = []
        for optimizer, parameters in groups:
            if self.scaler is not None:
                self.scaler.unscale_(optimizer)
            norms.append(accelerator.clip_grad_norm_(parameters, max_norm) if max_norm > 0 else None)
        for optimizer, _ in groups:
            if self.scaler is not None:
                self.scaler.step(optimizer)
            else:
                optimizer.step()
        if self.scaler is not None:
            self.scaler.update()
        return norms

    def step_scheduler(self, scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
        """The schedule counts updates, skipped ones too: with fp16 the first update is often skipped (the scale
        starts high), which torch would warn about; knowing which were skipped would cost a device sync."""
        if self.scaler is None:
            scheduler.step()
            return
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            scheduler.step()

    def loss_scale(self) -> float | None:
        return float(self.scaler.get_scale()) if self.scaler is not None else None

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict() if self.scaler is not None else {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(dict(state))
