"""What a model folder says about itself: config, trained or not, model id and the precision of each graph.

Our exports write a sidecar (`<graph>.json`) next to every graph; the published graphs have none and are the
`full` preset with the VibeVoice codec, trained, in fp32. `smalltts optimize` records the precision it wrote
(`"precision": "int8" | "fp16"`) in each graph's sidecar; a sidecar without it is fp32.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from model.config import CodecConfig, ModelConfig, preset_config, read_sidecar
from model.runtime.assets import CODEC_DECODER, CONDITION_ENCODER, DENOISER, PUBLISHED_REPO, REQUIRED_FILES

PUBLISHED_MODEL_ID = PUBLISHED_REPO
Precision = Literal["fp32", "fp16", "int8"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ModelFacts:
    config: ModelConfig
    trained: bool
    model_id: str
    graph_precisions: dict[str, str]  # "dmd/denoiser.onnx" -> "fp32" | "fp16" | "int8"

    @property
    def precision(self) -> str:
        """The model's precision, as `info` and /v1/config report it: the denoiser's (where the time goes)."""
        return self.graph_precisions.get(DENOISER, "fp32")


def read_model_facts(model_dir: str | Path) -> ModelFacts:
    """Facts from the dmd sidecars (the published graphs, with none, are `full`); raises ValueError if they clash."""
    model_dir = Path(model_dir)
    payload = read_sidecar(model_dir / DENOISER) or read_sidecar(model_dir / CONDITION_ENCODER)
    if payload is None:
        config = preset_config("full")
        trained, model_id = True, PUBLISHED_MODEL_ID
    else:
        config = ModelConfig.from_dict(payload["model"])
        # A sidecar without the flag is treated as untrained: claiming "trained" for random weights is worse.
        trained = bool(payload.get("trained", False))
        model_id = str(payload.get("model_id") or f"local/{model_dir.name}")
    codec_payload = read_sidecar(model_dir / CODEC_DECODER)
    if codec_payload is not None and "model" in codec_payload:
        codec = ModelConfig.from_dict(codec_payload["model"]).codec
        check_codec(codec, config.codec, model_dir)
        config = replace(config, codec=codec)
    return ModelFacts(config=config, trained=trained, model_id=model_id, graph_precisions=read_precisions(model_dir))


def read_precisions(model_dir: Path) -> dict[str, str]:
    """The precision each graph's sidecar records (fp32 when it has no sidecar or does not say)."""
    precisions: dict[str, str] = {}
    for name in REQUIRED_FILES:
        value = str((read_sidecar(model_dir / name) or {}).get("precision", "fp32"))
        if value not in PRECISIONS:
            raise ValueError(f"{model_dir / name}: sidecar precision must be one of {PRECISIONS}, got {value!r}")
        precisions[name] = value
    return precisions


def check_codec(codec: CodecConfig, expected: CodecConfig, model_dir: Path) -> None:
    for name in ("sample_rate_hz", "hop_samples", "latent_dim"):
        if getattr(codec, name) != getattr(expected, name):
            raise ValueError(
                f"{model_dir}: the codec's {name} ({getattr(codec, name)}) does not match the model's "
                f"({getattr(expected, name)})"
            )
