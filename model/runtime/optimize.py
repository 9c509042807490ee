"""A model folder in another precision: int8 (CPU) or fp16 (GPU), with a parity report against the source.

    from model.runtime.optimize import optimize_model_dir, parity_report
    optimize_model_dir("model/demo", "models/demo-int8", "int8")   # what `smalltts optimize` calls
    print(parity_report("model/demo", "models/demo-int8").table())

- **int8**: ONNX Runtime's static quantization of MatMul and Gemm (QDQ: signed 8-bit weights, one scale per
  tensor, float outputs; unsigned 8-bit activations with fixed scales calibrated on the inputs each graph sees
  while the fp32 model speaks a few sentences in the folder's own voice). Fixed activation scales keep every
  element's quantization independent of the rest of the batch, so a batch gives exactly the audio of its
  requests one by one, as in fp32; dynamic quantization (a scale per batch tensor) would not. The DiT and its
  encoders are almost all MatMuls, so that is where the time goes.
- **fp16**: every float initializer and op in half precision, with fp32 inputs and outputs (`keep_io_types`), so
  the I/O contract of the published weights (spec §1.3-§1.6: names, order, dtypes) is unchanged. For GPUs;
  ONNX Runtime's CPU provider runs most fp16 ops by casting back, so on a CPU fp16 is slower than fp32.

The condition encoder, the denoiser and the codec decoder are converted; the codec encoder is copied as it is,
so a voice's reference latents (and the voices stored by the service) are the same as the fp32 model's; it
runs once per voice. Every graph gets a sidecar that records its precision; a folder in the published layout
(no sidecars, see model/runtime/assets.py) gets the sidecars the runtime would have inferred for it.

Needs the `onnx` package (the train extra), imported only when converting; loading the result needs only
onnxruntime.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from model.config import SIDECAR_FORMAT, read_sidecar, sidecar_path
from model.errors import ModelError
from model.rope import rope_angles
from model.runtime.assets import (
    CODEC_DECODER,
    CODEC_ENCODER,
    CONDITION_ENCODER,
    DENOISER,
    REQUIRED_FILES,
    require_model_dir,
)
from model.runtime.facts import PRECISIONS, read_model_facts
from model.runtime.graph import CPU_PROVIDER, inspect_onnx_file
from model.runtime.synthesizer import SynthesisRequest, Synthesizer

logger = logging.getLogger(__name__)

CONVERTED_GRAPHS: tuple[str, ...] = (CONDITION_ENCODER, DENOISER, CODEC_DECODER)
# A protobuf file is limited to 2 GiB; larger graphs keep their weights in one external-data file.
_PROTOBUF_LIMIT_BYTES = 2_000_000_000


class OptimizeError(ModelError, ValueError):
    """The folder cannot be converted (unknown precision, target inside the source, onnx missing)."""


def optimize_model_dir(
    src: str | Path,
    out: str | Path,
    precision: str,
    *,
    overwrite: bool = False,
    graphs: Sequence[str] = CONVERTED_GRAPHS,
) -> Path:
    """Writes a copy of the model folder `src` into `out` with `graphs` converted to `precision` (int8 | fp16).

    Everything else in the folder (the codec encoder, reference.wav, ...) is copied. The folder appears whole or
    not at all: it is written next to `out` and renamed into place. Returns `out`.
    """
    if precision not in PRECISIONS or precision == "fp32":
        raise OptimizeError(f"precision must be int8 or fp16, got {precision!r}")
    src, out = Path(src), Path(out)
    require_model_dir(src)
    if out.resolve() == src.resolve() or src.resolve() in out.resolve().parents:
        raise OptimizeError(f"--out {out} must lie outside the source folder {src}")
    if out.exists() and not overwrite and any(out.iterdir()):
        raise OptimizeError(f"{out} exists and is not empty (pass overwrite=True / --overwrite to replace it)")
    facts = read_model_facts(src)
    if facts.precision != "fp32":
        raise OptimizeError(f"{src} is already {facts.precision}; convert the fp32 folder")
    if importlib.util.find_spec("onnx") is None:
        raise OptimizeError("optimize needs the onnx package (the train extra): pip install 'smalltts[train]'")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        skip = {(src / name).resolve() for name in graphs}
        for name in graphs:  # a converted graph's external-data files are rewritten, not copied
            skip |= {(src / name).parent.joinpath(f).resolve() for f in inspect_onnx_file(src / name).external_data}
        _copy_tree(src, staging, skip)
        calibration = record_graph_inputs(src) if precision == "int8" else {}
        for name in REQUIRED_FILES:
            graph_precision = precision if name in graphs else "fp32"
            if name in graphs:
                started = time.perf_counter()
                _convert(src / name, staging / name, precision, calibration.get(name, []))
                logger.info("%s -> %s in %.1f s", name, precision, time.perf_counter() - started)
            _write_sidecar(src, staging, name, graph_precision, facts)
        require_model_dir(staging)
        staging.chmod(0o755)  # mkdtemp made it private; the folder is served like any model folder
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _copy_tree(src: Path, dst: Path, skip: set[Path]) -> None:
    for path in sorted(src.rglob("*")):
        if path.resolve() in skip or not path.is_file():
            continue
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def _convert(source: Path, target: Path, precision: str, calibration: Sequence[dict[str, np.ndarray]]) -> None:
    import onnx

    target.parent.mkdir(parents=True, exist_ok=True)
    if precision == "int8":
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )

        feeds = list(calibration)

        class Reader(CalibrationDataReader):  # type: ignore[misc]
            def get_next(self) -> dict[str, np.ndarray] | None:
                return feeds.pop(0) if feeds else None

        # Static scales (calibrated on the recorded inputs), not dynamic ones: a dynamic scale is computed over the
        # whole batch tensor, so an item's audio would depend on the batch it lands in; with fixed scales every
        # element is quantized alone and a batch gives exactly the audio of its requests one by one.
        quantize_static(
            source,
            target,
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul", "Gemm"],
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            per_channel=False,  # per-channel weight scales measured slower here for no SNR gain
            use_external_data_format=source.stat().st_size > _PROTOBUF_LIMIT_BYTES,
            # Float outputs (MatMulIntegerToFloat): requantizing each product to uint8 and back cost time and
            # 1.6 dB of SNR on the demo denoiser for nothing, since the next op wants floats anyway.
            extra_options={
                "WeightSymmetric": True,
                "MatMulConstBOnly": True,
                "OpTypesToExcludeOutputQuantization": ["MatMul", "Gemm"],
            },
        )
        return
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(source))
    # keep_io_types: fp32 in and out, so the graph's contract is the published one; Casts go inside. Range (the
    # position tables) has no fp16 kernel and positions up to 4096 lose integers in fp16: it stays fp32.
    converted = convert_float_to_float16(
        model, keep_io_types=True, op_block_list=[*DEFAULT_OP_BLOCK_LIST, "Range"], disable_shape_infer=False
    )
    large = converted.ByteSize() > _PROTOBUF_LIMIT_BYTES
    onnx.save(converted, str(target), save_as_external_data=large, location=f"{target.name}.data" if large else None)


def _write_sidecar(src: Path, out: Path, name: str, precision: str, facts: Any) -> None:
    """The source's sidecar with the precision added; for a graph without one, what the runtime infers."""
    payload = read_sidecar(src / name)
    if payload is None or "model" not in payload:
        payload = {
            "format": SIDECAR_FORMAT,
            "artifact": Path(name).name,
            "model": facts.config.to_dict(),
            "trained": facts.trained,
            "model_id": facts.model_id,
        }
    payload["precision"] = precision
    if precision != "fp32":
        payload["optimized_from"] = str(src)
    path = sidecar_path(out / name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")


# --- calibration ----------------------------------------------------------------------------------------

_CALIBRATION_TEXTS = (
    "The weather is nice today.",
    "Can you send me the report by Friday? I will call you back in ten minutes.",
    "Seven hundred and twelve people came to the meeting on the third of May.",
    "Oh really! That is wonderful news.",
)


def record_graph_inputs(model_dir: str | Path, *, seed: int = 0) -> dict[str, list[dict[str, np.ndarray]]]:
    """The inputs every graph sees while the fp32 model speaks a few sentences (by graph path, by input name).

    These calibrate the int8 activation scales: the folder's own voice (reference.wav, else seeded noise), real
    phonemes, one batch of four lengths, every denoiser step.
    """
    from model.text import estimate_duration_s, tokenize

    synthesizer = Synthesizer.load(model_dir, [CPU_PROVIDER], cache_mb=0)
    rng = np.random.default_rng(seed)
    latents = synthesizer.encode_reference(_voice(synthesizer, rng))
    requests = []
    for i, text in enumerate(_CALIBRATION_TEXTS):
        tokens = tokenize(text)
        ref = latents[: max(1, latents.shape[0] - 4 * i)]
        requests.append(SynthesisRequest(tuple(tokens.ids), ref, duration_s=estimate_duration_s(tokens), seed=seed + i))
    recorded: dict[str, list[dict[str, np.ndarray]]] = {name: [] for name in REQUIRED_FILES}
    for name, graph in synthesizer.graphs.items():
        run = graph.run

        def recording(*arrays: Any, _graph: Any = graph, _name: str = name, _run: Any = run) -> list[np.ndarray]:
            recorded[_name].append(
                {
                    graph_input.name: np.ascontiguousarray(array, dtype=graph_input.dtype)
                    for graph_input, array in zip(_graph.inputs, arrays, strict=True)
                }
            )
            result: list[np.ndarray] = _run(*arrays)
            return result

        graph.run = recording  # type: ignore[method-assign]
    synthesizer.synthesize_batch(requests)
    return recorded


def _voice(synthesizer: Synthesizer, rng: np.random.Generator) -> np.ndarray:
    voice = synthesizer.model_dir / "reference.wav"
    if voice.is_file():
        from model.runtime.audio import read_reference

        return read_reference(voice, synthesizer.sample_rate_hz, synthesizer.limits)
    return (0.1 * rng.standard_normal(3 * synthesizer.sample_rate_hz)).astype(np.float32)


# --- parity ---------------------------------------------------------------------------------------------


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """10 log10(signal power / error power) of `other` against `reference`; inf when they are equal."""
    reference = np.asarray(reference, dtype=np.float64)
    error = float(np.sum((reference - np.asarray(other, dtype=np.float64)) ** 2))
    signal = float(np.sum(reference**2))
    if error == 0.0:
        return math.inf
    return 10.0 * math.log10(max(signal, 1e-30) / error)


@dataclass
class ParityReport:
    src: str
    out: str
    precision: str
    graphs: list[dict[str, Any]] = field(default_factory=list)  # {graph, output, snr_db}
    end_to_end_snr_db: float = math.nan
    src_ms: float = math.nan  # one end-to-end batch, median of the timed runs
    out_ms: float = math.nan
    eval: dict[str, Any] | None = None  # PER and speaker similarity of both, for a trained model

    def to_dict(self) -> dict[str, Any]:
        return {
            "src": self.src,
            "out": self.out,
            "precision": self.precision,
            "graphs": self.graphs,
            "end_to_end_snr_db": self.end_to_end_snr_db,
            "src_ms": self.src_ms,
            "out_ms": self.out_ms,
            "eval": self.eval,
        }

    def table(self) -> str:
        lines = [f"parity of {self.out} ({self.precision}) against {self.src}"]
        width = max([len(f"{row['graph']} {row['output']}") for row in self.graphs] + [20])
        for row in self.graphs:
            lines.append(f"  {row['graph'] + ' ' + row['output']:<{width}}  SNR {row['snr_db']:6.1f} dB")
        lines.append(f"  {'end to end (audio)':<{width}}  SNR {self.end_to_end_snr_db:6.1f} dB")
        if math.isfinite(self.src_ms) and math.isfinite(self.out_ms):
            lines.append(
                f"  {'one batch, wall time':<{width}}  {self.src_ms:.0f} ms -> {self.out_ms:.0f} ms "
                f"({self.src_ms / max(self.out_ms, 1e-9):.2f}x)"
            )
        if self.eval is not None:
            for key in ("src", "out"):
                row = self.eval[key]
                sim = f"{row['mean_similarity']:.3f}" if row.get("mean_similarity") is not None else "n/a"
                lines.append(f"  {key:<4} PER {100 * row['corpus_per']:.1f} %  speaker similarity {sim}")
            lines.append(
                f"  change: PER {100 * self.eval['per_change']:+.1f} points, "
                f"similarity {self.eval['similarity_change']:+.3f}  ({self.eval['sentences']} sentences)"
            )
        return "\n".join(lines) + "\n"


def parity_report(
    src: str | Path,
    out: str | Path,
    *,
    batch: int = 2,
    seed: int = 0,
    timed_runs: int = 1,
    intra_op_threads: int = 0,
) -> ParityReport:
    """Output SNR of each converted graph on the same inputs, end-to-end audio SNR, and one batch's wall time.

    Inputs: the folder's own reference.wav (else seeded noise) as the voice, seeded random phoneme ids, x_t at
    t = 0.75 for the denoiser, and the source's own sampled latents for the decoder.
    """
    src, out = Path(src), Path(out)
    providers = [CPU_PROVIDER]
    source = Synthesizer.load(src, providers, intra_op_threads=intra_op_threads)
    target = Synthesizer.load(out, providers, intra_op_threads=intra_op_threads)
    report = ParityReport(src=str(src), out=str(out), precision=target.precision)
    rng = np.random.default_rng(seed)
    requests = _parity_requests(source, rng, batch)
    ref_lat = [np.asarray(r.ref_latents) for r in requests]
    tokens = [np.asarray(r.token_ids, dtype=np.int64) for r in requests]

    # condition encoder: the batch padded as the runtime pads it
    max_ref, max_tok = max(r.shape[0] for r in ref_lat), max(t.shape[0] for t in tokens)
    refs = np.zeros((batch, max_ref, source.latent_dim), np.float32)
    phonemes = np.zeros((batch, max_tok), np.int64)
    phonemes_mask = np.zeros((batch, max_tok), bool)
    for i, (r, t) in enumerate(zip(ref_lat, tokens, strict=True)):
        refs[i, : r.shape[0]] = r
        phonemes[i, : t.shape[0]] = t
        phonemes_mask[i, : t.shape[0]] = True
    lengths = np.array([r.shape[0] for r in ref_lat], np.int64)
    cond_in = (refs, lengths, phonemes, phonemes_mask)
    cond_src = source.graphs[CONDITION_ENCODER].run(*cond_in)
    cond_out = target.graphs[CONDITION_ENCODER].run(*cond_in)
    names = source.graphs[CONDITION_ENCODER].output_names
    for name, a, b in zip(names, cond_src, cond_out, strict=True):
        if a.dtype.kind == "f":
            report.graphs.append({"graph": CONDITION_ENCODER, "output": name, "snr_db": snr_db(a, b)})

    # denoiser: one step at t = 0.75 on the source's conditioning
    frames = max(source.num_frames(r.duration_s) for r in requests)
    x_t = rng.standard_normal((batch, frames, source.latent_dim)).astype(np.float32)
    rope_dim = source.graphs[DENOISER].fixed_dim(9, 2) or source.config.dit.rope_dim
    rope = rope_angles(frames, rope_dim, source.config.dit.rope_theta)
    k_ref, v_ref, ref_mask, k_text, v_text = cond_src[:5]
    den_in: list[np.ndarray] = [x_t, np.ones((batch, frames), bool), np.full(batch, 0.75, np.float32)]
    den_in += [k_ref, v_ref, ref_mask, k_text, v_text, phonemes_mask, rope]
    v_src = source.graphs[DENOISER].run(*den_in)[0]
    v_out = target.graphs[DENOISER].run(*den_in)[0]
    report.graphs.append({"graph": DENOISER, "output": "velocity", "snr_db": snr_db(v_src, v_out)})

    # end to end, which also gives realistic latents for the decoder
    started = time.perf_counter()
    audio_src = source.synthesize_batch(requests)
    src_times = [time.perf_counter() - started]
    started = time.perf_counter()
    audio_out = target.synthesize_batch(requests)
    out_times = [time.perf_counter() - started]
    for _ in range(timed_runs):  # interleaved, so load drift hits both sides
        started = time.perf_counter()
        source.synthesize_batch(requests)
        src_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        target.synthesize_batch(requests)
        out_times.append(time.perf_counter() - started)
    report.src_ms = 1000.0 * float(np.median(src_times[1:] or src_times))
    report.out_ms = 1000.0 * float(np.median(out_times[1:] or out_times))
    report.end_to_end_snr_db = snr_db(
        np.concatenate([r.audio for r in audio_src]), np.concatenate([r.audio for r in audio_out])
    )
    latents = rng.standard_normal((1, frames, source.latent_dim)).astype(np.float32)
    latents *= float(np.std(np.concatenate(ref_lat))) or 1.0  # latents at the scale of real ones
    dec_src = source.graphs[CODEC_DECODER].run(latents)[0]
    dec_out = target.graphs[CODEC_DECODER].run(latents)[0]
    report.graphs.append({"graph": CODEC_DECODER, "output": "audio", "snr_db": snr_db(dec_src, dec_out)})
    if target.graph_precisions.get(CODEC_ENCODER, "fp32") != "fp32":
        report.graphs.append({"graph": CODEC_ENCODER, "output": "latents", "snr_db": math.nan})
    return report


def _parity_requests(source: Synthesizer, rng: np.random.Generator, batch: int) -> list[SynthesisRequest]:
    latents = source.encode_reference(_voice(source, rng))
    vocab = min(source.config.text.vocab_size, 175)  # text and IPA symbols, no tags
    requests = []
    for i in range(batch):
        tokens = tuple(int(t) for t in rng.integers(1, vocab, 24 + 8 * i))
        ref = latents[: max(1, latents.shape[0] - 3 * i)]  # different reference lengths, as a real batch
        requests.append(SynthesisRequest(token_ids=tokens, ref_latents=ref, duration_s=2.0 + 0.5 * i, seed=1000 + i))
    return requests


def graph_file_bytes(model_dir: str | Path) -> int:
    """Bytes of the folder's graphs and their external data (what a precision saves on disk)."""
    model_dir = Path(model_dir)
    total = 0
    for name in REQUIRED_FILES:
        path = model_dir / name
        total += path.stat().st_size
        total += sum(os.path.getsize(path.parent / f) for f in inspect_onnx_file(path).external_data)
    return total
