"""Export a trained checkpoint to a model folder the service loads directly, and prove it.

    smalltts export --checkpoint runs/distill --out models/mine   # the latest student of a distill run

Writes `dmd/condition_encoder.onnx` and `dmd/denoiser.onnx` (model.export's wrappers, sidecars marked
trained), copies the codec graphs the dataset was built with into `codec/`, then checks (1) torch-vs-ONNX
parity of both graphs on example inputs and (2) that `Synthesizer.load` opens the folder and synthesizes.

What a checkpoint path may be: a weights file with its sidecar (`student.pt`, `teacher_ema.pt`, ...), a
checkpoint folder (`runs/x/checkpoints/step_0001000`: its student.pt, else teacher_ema.pt), or a run folder
(its latest checkpoint).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from model.config import ScheduleConfig
from training.errors import TrainingBaseError
from training.loop import CONFIG_FILE, TrainingError, read_checkpoint_config, resolve_checkpoint_dir

WEIGHT_PREFERENCE = ("student.pt", "teacher_ema.pt", "teacher.pt")
# A teacher that was never distilled is sampled with DDIM; this many steps unless --steps says otherwise.
TEACHER_DEFAULT_STEPS = 16
PARITY_TOLERANCE = 1e-3
CODEC_FILES = ("encoder.onnx", "encoder.json", "decoder.onnx", "decoder.json")


class ExportError(TrainingBaseError, RuntimeError):
    """The checkpoint cannot be exported, or the exported folder failed its checks."""


@dataclass(frozen=True)
class ExportResult:
    out_dir: Path
    weights: Path
    role: str
    max_abs_diff: float
    synthesized_s: float


def resolve_weights(checkpoint: str | Path) -> Path:
    path = Path(checkpoint)
    if path.is_file():
        return path
    try:
        ckpt = resolve_checkpoint_dir(path)
    except TrainingError as exc:
        raise ExportError(str(exc)) from None
    for name in WEIGHT_PREFERENCE:
        if (ckpt / name).is_file():
            return ckpt / name
    raise ExportError(f"{ckpt} holds no DiT weights ({', '.join(WEIGHT_PREFERENCE)}); ASR/SV checkpoints do not export")


def find_codec_dir(weights: Path) -> Path | None:
    """The codec the training data was built with, from the run facts saved next to the weights."""
    if not (weights.parent / CONFIG_FILE).is_file():
        return None
    data_dir = read_checkpoint_config(weights.parent).get("data_dir")
    index = Path(data_dir) / "index.json" if data_dir else None
    if index is None or not index.is_file():
        return None
    codec_dir = json.loads(index.read_text()).get("codec_dir")
    return Path(codec_dir) if codec_dir else None


def check_parity(model: torch.nn.Module, out_dir: Path) -> float:
    """Max |torch - onnxruntime| over both graphs' outputs on example inputs; raises ExportError above tolerance."""
    from model.export import ConditionEncoderGraph, DenoiserGraph, example_condition_inputs, example_denoiser_inputs
    from model.runtime.graph import OnnxGraph

    worst = 0.0
    cases = [
        (ConditionEncoderGraph(model), example_condition_inputs(model.cfg), out_dir / "dmd" / "condition_encoder.onnx"),
        (DenoiserGraph(model), example_denoiser_inputs(model), out_dir / "dmd" / "denoiser.onnx"),
    ]
    for wrapper, inputs, path in cases:
        with torch.no_grad():
            expected = wrapper(*inputs)
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = OnnxGraph(path, providers=["CPUExecutionProvider"]).run(*(x.numpy() for x in inputs))
        for want, have in zip(expected, got, strict=True):
            want_np = want.numpy()
            if want_np.dtype == np.bool_:
                if not np.array_equal(want_np, have):
                    raise ExportError(f"{path.name}: a mask output differs between torch and ONNX")
                continue
            diff = float(np.max(np.abs(want_np - have))) if want_np.size else 0.0
            scale = max(1.0, float(np.max(np.abs(want_np))) if want_np.size else 1.0)
            worst = max(worst, diff)
            if not diff <= PARITY_TOLERANCE * scale:
                raise ExportError(f"{path.name}: torch and ONNX differ by {diff:.2e} (tolerance {PARITY_TOLERANCE:g})")
    return worst


def check_serves(out_dir: Path) -> float:
    """Loads the folder as the service does and synthesizes 1 s; returns the seconds of audio produced."""
    from model.runtime.synthesizer import SynthesisRequest, Synthesizer

    synthesizer = Synthesizer.load(out_dir, providers=["CPUExecutionProvider"])
    frames = max(2, int(round(synthesizer.frame_rate_hz)))
    reference = np.random.default_rng(0).standard_normal((frames, synthesizer.latent_dim)).astype(np.float32)
    request = SynthesisRequest(token_ids=(20, 40, 60, 80), ref_latents=reference, duration_s=1.0, seed=0)
    (result,) = synthesizer.synthesize_batch([request])
    if result.audio.size == 0 or not np.isfinite(result.audio).all():
        raise ExportError(f"{out_dir}: the exported model produced no usable audio")
    return float(result.duration_s)


def _sampling_schedule(schedule: ScheduleConfig, role: str, steps: int | None, guidance: float) -> ScheduleConfig:
    if role.startswith("teacher"):
        num_steps = steps if steps is not None else TEACHER_DEFAULT_STEPS
        return replace(schedule, sampler="ddim", num_steps=num_steps, guidance_scale=guidance)
    if guidance != 1.0:
        raise ExportError("--guidance applies to teacher checkpoints only (guidance is distilled into a student)")
    return replace(schedule, sampler="student", num_steps=steps if steps is not None else schedule.num_steps)


def export_checkpoint(
    checkpoint: str | Path,
    out_dir: str | Path,
    *,
    codec_dir: str | Path | None = None,
    model_id: str | None = None,
    steps: int | None = None,
    guidance_scale: float = 1.0,
) -> ExportResult:
    """Exports, then proves the folder. The sidecar records how to sample it: a student keeps its 4-step loop
    (or `steps`); a teacher gets the DDIM sampler with `steps` (default 16) and text guidance `guidance_scale`.
    """
    from model.config import read_sidecar
    from model.export import export_model_dir
    from model.nn.checkpoint import load_checkpoint

    weights = resolve_weights(checkpoint)
    if read_sidecar(weights) is None:
        raise ExportError(
            f"{weights} has no config sidecar ({weights.with_suffix('.json').name}); cannot tell its preset"
        )
    role = str((read_sidecar(weights) or {}).get("role", "model"))
    codec = Path(codec_dir) if codec_dir is not None else find_codec_dir(weights)
    if codec is None:
        raise ExportError("cannot tell which codec the model was trained with; pass --codec-dir DIR (a codec/ folder)")
    missing = [name for name in ("encoder.onnx", "decoder.onnx") if not (codec / name).is_file()]
    if missing:
        raise ExportError(f"codec folder {codec} lacks {', '.join(missing)}")

    if steps is not None and steps < 1:
        raise ExportError(f"--steps must be >= 1, got {steps}")
    if not guidance_scale >= 1.0:
        raise ExportError(f"--guidance must be >= 1 (1 = off), got {guidance_scale}")
    model = load_checkpoint(weights).eval()
    model.cfg = replace(model.cfg, schedule=_sampling_schedule(model.cfg.schedule, role, steps, guidance_scale))
    out_dir = Path(out_dir)
    export_model_dir(model, None, out_dir, trained=True, model_id=model_id or f"local/{out_dir.name}")
    (out_dir / "codec").mkdir(parents=True, exist_ok=True)
    for name in CODEC_FILES:
        if (codec / name).is_file():
            shutil.copy2(codec / name, out_dir / "codec" / name)
    max_diff = check_parity(model, out_dir)
    seconds = check_serves(out_dir)
    return ExportResult(out_dir=out_dir, weights=weights, role=role, max_abs_diff=max_diff, synthesized_s=seconds)
