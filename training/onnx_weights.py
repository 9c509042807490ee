"""Reads a DiT's torch weights back out of its own exported ONNX pair (condition_encoder + denoiser), so a shipped
model folder can warm-start training when its training state was never kept (the demo's teacher: 104 MB).

The legacy exporter keeps most parameters under their torch names (prefixed by the export wrapper's `model.`),
but stores each Linear weight transposed as an anonymous `onnx::MatMul_N` initializer; the MatMul node that
reads it is named after the module path ("/dit/blocks.0/attn/to_q/MatMul"), which gives the name back.

    python -m training.onnx_weights --model model/demo --out runs/demo_init.pt
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.errors import TrainingBaseError

GRAPHS = ("condition_encoder", "denoiser")


class OnnxWeightsError(TrainingBaseError, ValueError):
    """The ONNX pair does not hold every parameter of the model its sidecar describes."""


def _module_path(scope: str) -> str:
    """ "dit/blocks.0/attn/to_out/to_out.0" -> "dit.blocks.0.attn.to_out.0" (a Sequential repeats its name)."""
    parts = scope.split("/")
    kept = [part for part, nxt in zip(parts, [*parts[1:], ""], strict=True) if not nxt.startswith(part + ".")]
    return ".".join(kept)


def _resolve(name: str, state_names: Sequence[str]) -> str | None:
    """The state-dict key an ONNX weight belongs to. The condition encoder's export calls each block's cross
    projections from outside the block, so they are scoped "/to_k_ref_3" (the 4th call = block 3)."""
    if name in state_names:
        return name
    module, _, leaf = name.rpartition(".")
    match = re.fullmatch(r"(\w+?)(?:_(\d+))?", module)
    if match is None:
        return None
    base, index = match.group(1), int(match.group(2) or 0)
    candidates = [key for key in state_names if key.endswith(f".{base}.{leaf}") or key == f"{base}.{leaf}"]
    return candidates[index] if index < len(candidates) else None


def _graph_tensors(path: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {init.name: init for init in graph.initializer}
    tensors: dict[str, np.ndarray] = {}
    for name, init in inits.items():
        if not name.startswith("onnx::"):
            tensors[name.removeprefix("model.")] = numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type not in ("MatMul", "Gemm") or not node.name.endswith(f"/{node.op_type}"):
            continue
        for inp in node.input[1:2]:
            if inp.startswith("onnx::") and inp in inits:
                module = _module_path(node.name.strip("/").rsplit("/", 1)[0])
                weight = numpy_helper.to_array(inits[inp])
                tensors[f"{module}.weight"] = weight if node.op_type == "Gemm" else weight.T
    return tensors


def load_onnx_weights(model_dir: str | Path) -> nn.Module:
    """The DiTModel described by model_dir/dmd/denoiser.json, with every weight taken from the two graphs."""
    from model.config import ModelConfig
    from model.nn.dit import DiTModel

    dmd = Path(model_dir) / "dmd"
    sidecar = json.loads((dmd / "denoiser.json").read_text())
    model = DiTModel(ModelConfig.from_dict(sidecar["model"]))
    tensors: dict[str, np.ndarray] = {}
    for graph in GRAPHS:
        tensors.update(_graph_tensors(dmd / f"{graph}.onnx"))
    state = model.state_dict()
    names = list(state)
    for name in list(tensors):
        key = _resolve(name, names)
        if key is not None and key != name:
            tensors.setdefault(key, tensors.pop(name))
    missing = [name for name in state if name not in tensors]
    if missing:
        raise OnnxWeightsError(f"{len(missing)} parameters not found in the ONNX graphs, e.g. {missing[:4]}")
    loaded = {}
    for name, current in state.items():
        value = torch.from_numpy(np.array(tensors[name])).to(current.dtype)
        if value.numel() == current.numel() == 1:  # folded scalars come back as (1,)
            value = value.reshape(current.shape)
        if value.shape != current.shape:
            raise OnnxWeightsError(f"{name}: ONNX holds {tuple(value.shape)}, the model {tuple(current.shape)}")
        loaded[name] = value
    model.load_state_dict(loaded)
    return model


def main(argv: Sequence[str] | None = None) -> int:
    from model.nn.checkpoint import save_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a model folder with dmd/*.onnx and sidecars")
    parser.add_argument("--out", type=Path, required=True, help="the checkpoint to write (for --init)")
    args = parser.parse_args(argv)
    model = load_onnx_weights(args.model)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(args.out, model, role="teacher")
    print(f"wrote {args.out} ({sum(p.numel() for p in model.parameters()):,} parameters)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
