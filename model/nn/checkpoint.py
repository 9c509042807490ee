"""Save and load DiTModel weights, with a config sidecar, and read the original's checkpoints (spec §4.6).

Our checkpoints are `{"model": state_dict, **extra}` plus a JSON sidecar (`model.config.write_sidecar`) that
says which architecture they belong to. The original's checkpoints come in several wrappings (a plain
state_dict, {"model": ...}, {"student_model": ...}) and their keys carry wrapper prefixes from
DataParallel/accelerate ("module."), torch.compile ("_orig_mod.", also inside: "dit._orig_mod.") and
ema_pytorch ("ema_model.", "online_model.", plus the bookkeeping entries "initted" and "step").
`clean_state_dict_keys` removes all of them, in any nesting order (the original's single pass left
"ema_model.module.x" as "module.x"; we strip until nothing changes).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from model.config import ModelConfig, preset_config, read_sidecar, write_sidecar
from model.nn.dit import DiTModel

WRAPPER_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.", "ema_model.", "online_model.")
BOOKKEEPING_KEYS = frozenset({"initted", "step"})
# When an ema_pytorch state_dict holds both copies, the EMA weights are the ones to serve.
_PREFERRED_SOURCE = "ema_model."


def clean_key(key: str) -> str:
    """Strips wrapper prefixes repeatedly (any order, any depth) and removes "._orig_mod." anywhere."""
    key = key.replace("._orig_mod.", ".")
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix) :]
                changed = True
    return key


def clean_state_dict_keys(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Returns a new state_dict with cleaned keys and without ema_pytorch bookkeeping entries.

    Raises ValueError when two different keys clean to the same name, unless exactly one of them came
    from the EMA copy ("ema_model."), which then wins over the online copy.
    """
    cleaned: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for raw_key, value in state_dict.items():
        key = clean_key(raw_key)
        if key in BOOKKEEPING_KEYS:
            continue
        if key in cleaned:
            old_is_ema = _PREFERRED_SOURCE in sources[key]
            new_is_ema = _PREFERRED_SOURCE in raw_key
            if old_is_ema == new_is_ema:
                raise ValueError(f"checkpoint keys {sources[key]!r} and {raw_key!r} both clean to {key!r}")
            if old_is_ema:
                continue
        cleaned[key] = value
        sources[key] = raw_key
    return cleaned


def extract_state_dict(checkpoint: Mapping[str, Any], key: str | None = None) -> Mapping[str, Any]:
    """checkpoint[key] when a key is given, else checkpoint["model"] when present, else the checkpoint itself."""
    if key is not None:
        if key not in checkpoint:
            raise ValueError(f"checkpoint has no entry {key!r}; it has {sorted(checkpoint)[:10]}")
        return checkpoint[key]  # type: ignore[no-any-return]
    if isinstance(checkpoint.get("model"), Mapping):
        return checkpoint["model"]  # type: ignore[no-any-return]
    return checkpoint


def save_checkpoint(
    path: str | Path, model: DiTModel, *, extra: Mapping[str, Any] | None = None, **sidecar_extra: Any
) -> Path:
    """Writes {"model": state_dict, **extra} to path and the config sidecar next to it; returns path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    extra = dict(extra or {})
    if "model" in extra:
        raise ValueError('extra must not contain "model": that entry holds the weights')
    torch.save({"model": model.state_dict(), **extra}, path)
    write_sidecar(path, model.cfg, artifact_kind="checkpoint", **sidecar_extra)
    return path


def load_state_dict_into(model: DiTModel, state_dict: Mapping[str, Tensor]) -> None:
    """Loads cleaned keys strictly, with one readable error listing missing and unexpected keys."""
    state = clean_state_dict_keys(state_dict)
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(
            f"checkpoint does not match the {model.cfg.preset!r} architecture: "
            f"{len(missing)} missing keys {missing[:5]}, {len(unexpected)} unexpected keys {unexpected[:5]}"
        )
    model.load_state_dict(state, strict=True)


def load_checkpoint(
    path: str | Path, model: DiTModel | None = None, *, key: str | None = None, map_location: str = "cpu"
) -> DiTModel:
    """Loads weights into `model`, or into a new DiTModel built from the sidecar's config.

    A checkpoint without a sidecar is taken to be the original's, i.e. the `full` architecture. `key` picks
    an entry of a multi-model checkpoint (the original's DMD checkpoints: "student_model").
    """
    path = Path(path)
    if model is None:
        sidecar = read_sidecar(path)
        cfg = ModelConfig.from_dict(sidecar["model"]) if sidecar is not None else preset_config("full")
        model = DiTModel(cfg)
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    load_state_dict_into(model, extract_state_dict(checkpoint, key))
    return model
