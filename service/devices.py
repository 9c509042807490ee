"""Which devices the service runs its model on: one ONNX Runtime provider list per device.

    device_providers(settings)   'cpu', 'auto' (every visible GPU, else the runtime's choice) or 'cuda:0,1'

GPUs are counted from CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`, and only when ONNX Runtime has CUDA.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import onnxruntime as ort

from model.runtime.graph import CPU_PROVIDER, CUDA_PROVIDER
from service.settings import Settings


def device_providers(settings: Settings) -> list[list[str] | None]:
    """One provider list per device: 'cpu', 'auto' (every visible GPU, else the runtime's choice) or 'cuda:0,1'."""
    if settings.providers is not None:
        return [list(settings.providers)]
    devices = settings.devices.strip().lower()
    if devices == "cpu":
        return [[CPU_PROVIDER]]
    if devices == "auto":
        count = visible_gpu_count() if CUDA_PROVIDER in ort.get_available_providers() else 0
        if count <= 1:
            return [None]
        gpu_ids = list(range(count))
    else:
        try:
            gpu_ids = [int(part.strip().removeprefix("cuda:")) for part in devices.split(",") if part.strip()]
        except ValueError:
            raise ValueError(f"devices must be 'auto', 'cpu' or a list like 'cuda:0,cuda:1', got {devices!r}") from None
    # ONNX Runtime takes (name, options) pairs; the runtime passes the list through to the session.
    return [[(CUDA_PROVIDER, {"device_id": str(i)}), CPU_PROVIDER] for i in gpu_ids]  # type: ignore[list-item]


def visible_gpu_count() -> int:
    """GPUs this process may use (at least 1 when none can be counted: the runtime then picks its own)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([part for part in visible.split(",") if part.strip() and part.strip() != "-1"])
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 1
    listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10, check=False)
    return max(1, sum(1 for line in listing.stdout.splitlines() if line.startswith("GPU ")))
