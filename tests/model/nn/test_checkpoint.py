from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model.config import preset_config, sidecar_path
from model.export import build_random_model
from model.nn.checkpoint import (
    clean_key,
    clean_state_dict_keys,
    extract_state_dict,
    load_checkpoint,
    load_state_dict_into,
    save_checkpoint,
)
from model.nn.dit import DiTModel


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("velocity.weight", "velocity.weight"),
        ("module.velocity.weight", "velocity.weight"),
        ("module.module.velocity.weight", "velocity.weight"),
        ("_orig_mod.velocity.weight", "velocity.weight"),
        ("ema_model.module.velocity.weight", "velocity.weight"),  # the original's single pass left "module."
        ("online_model._orig_mod.dit.norm_out.linear.bias", "dit.norm_out.linear.bias"),
        ("dit._orig_mod.transformer_blocks.0.ff.w1.weight", "dit.transformer_blocks.0.ff.w1.weight"),
        ("module.dit._orig_mod.input_embed.proj.bias", "dit.input_embed.proj.bias"),
    ],
)
def test_clean_key(raw: str, clean: str) -> None:
    assert clean_key(raw) == clean


def _wrapped(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The original's wrappings, mixed: torch.compile of dit, accelerate, ema_pytorch with bookkeeping."""
    wrapped: dict[str, torch.Tensor] = {"initted": torch.tensor(True), "step": torch.tensor(1500)}
    prefixes = ["module.", "ema_model.", "_orig_mod.", "ema_model.module._orig_mod.", ""]
    for i, (key, value) in enumerate(state.items()):
        if key.startswith("dit."):
            key = key.replace("dit.", "dit._orig_mod.", 1)
        wrapped[prefixes[i % len(prefixes)] + key] = value
    return wrapped


def test_wrapped_original_keys_load_strictly(tiny_model: DiTModel) -> None:
    state = tiny_model.state_dict()
    cleaned = clean_state_dict_keys(_wrapped(state))
    assert set(cleaned) == set(state)
    target = DiTModel(preset_config("tiny"))
    target.load_state_dict(cleaned, strict=True)
    for key, value in state.items():
        torch.testing.assert_close(target.state_dict()[key], value)


def test_ema_copy_wins_over_online_copy() -> None:
    online, ema = torch.zeros(2), torch.ones(2)
    cleaned = clean_state_dict_keys({"online_model.w": online, "ema_model.w": ema, "initted": torch.tensor(1)})
    assert cleaned == {"w": ema}
    cleaned = clean_state_dict_keys({"ema_model.w": ema, "online_model.w": online})
    assert cleaned == {"w": ema}


def test_ambiguous_keys_raise() -> None:
    with pytest.raises(ValueError, match="both clean to 'w'"):
        clean_state_dict_keys({"module.w": torch.zeros(1), "w": torch.ones(1)})


def test_extract_state_dict_wrappings() -> None:
    state = {"a": torch.zeros(1)}
    assert extract_state_dict(state) is state
    assert extract_state_dict({"model": state, "step": 3}) is state
    assert extract_state_dict({"student_model": state, "discriminator_model": {}}, "student_model") is state
    with pytest.raises(ValueError, match="no entry 'student_model'"):
        extract_state_dict({"model": state}, "student_model")


def test_save_and_load_round_trip_with_sidecar(tmp_path: Path, tiny_model: DiTModel) -> None:
    path = save_checkpoint(tmp_path / "ckpt" / "step_10.pt", tiny_model, extra={"step": 10}, trained=True)
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["model"]["preset"] == "tiny"
    assert sidecar["trained"] is True
    assert torch.load(path, weights_only=True)["step"] == 10
    loaded = load_checkpoint(path)  # architecture from the sidecar
    assert loaded.cfg == tiny_model.cfg
    for key, value in tiny_model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_load_original_style_dmd_checkpoint(tmp_path: Path, tiny_model: DiTModel) -> None:
    path = tmp_path / "checkpoint_latest.pt"
    torch.save({"student_model": _wrapped(tiny_model.state_dict()), "discriminator_model": {}}, path)
    target = DiTModel(preset_config("tiny"))
    load_checkpoint(path, target, key="student_model")
    torch.testing.assert_close(target.velocity.weight, tiny_model.velocity.weight)


def test_mismatched_checkpoint_names_the_keys() -> None:
    state = build_random_model("tiny").state_dict()
    del state["velocity.bias"]
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"1 missing keys \['velocity.bias'\], 1 unexpected keys \['extra.weight'\]"):
        load_state_dict_into(DiTModel(preset_config("tiny")), state)
