"""Export DiTModel and the stand-in codec to ONNX graphs with the published smalltts contract (spec §1.3-§1.6).

The runtime binds inputs and outputs BY POSITION, so the order below is the contract; the names are only
descriptive. Every graph has dynamic batch and sequence axes and a JSON sidecar next to it.

    dmd/condition_encoder.onnx  ref_latents f32 (B,R,C), ref_latents_lengths i64 (B,), phonemes i64 (B,P),
                                phonemes_mask bool (B,P)
                             -> k_ref f32 (L,B,H,R,E), v_ref, ref_mask bool (B,R), k_text f32 (L,B,H,P,E), v_text
    dmd/denoiser.onnx           x_t f32 (B,S,C), mask bool (B,S), t f32 (B,), k_ref, v_ref, ref_mask, k_text,
                                v_text, phonemes_mask bool (B,P), rope f32 (1,S,rope_dim)
                             -> velocity f32 (B,S,C)
    codec/encoder.onnx          audio f32 (B,1,N) -> latents f32 (B,T,C), T = N // hop
    codec/decoder.onnx          latents f32 (B,T,C) -> audio f32 (B,1,T*hop)

CPU smoke test (writes a random tiny model folder):
    .venv/bin/python -m model.export --preset tiny --out /tmp/smalltts-tiny
"""

from __future__ import annotations

import argparse
import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from torch import Tensor, nn

from model.config import CodecConfig, ModelConfig, preset_config, write_sidecar
from model.nn.codec import StandinCodec
from model.nn.dit import Conditions, DiTModel

OPSET_VERSION = 18
Exporter = Literal["legacy", "dynamo"]
DEFAULT_EXPORTER: Exporter = "legacy"

CONDITION_ENCODER_INPUTS = ("ref_latents", "ref_latents_lengths", "phonemes", "phonemes_mask")
CONDITION_ENCODER_OUTPUTS = ("k_ref", "v_ref", "ref_mask", "k_text", "v_text")
DENOISER_INPUTS = ("x_t", "mask", "t", "k_ref", "v_ref", "ref_mask", "k_text", "v_text", "phonemes_mask", "rope")
DENOISER_OUTPUTS = ("velocity",)
CODEC_ENCODER_INPUTS, CODEC_ENCODER_OUTPUTS = ("audio",), ("latents",)
CODEC_DECODER_INPUTS, CODEC_DECODER_OUTPUTS = ("latents",), ("audio",)

# Symbolic axis names, shared by both graphs so that a reader sees which axes must agree.
_KV_AXES = {1: "B", 3: "R"}
_TEXT_KV_AXES = {1: "B", 3: "P"}
CONDITION_ENCODER_AXES: dict[str, dict[int, str]] = {
    "ref_latents": {0: "B", 1: "R"},
    "ref_latents_lengths": {0: "B"},
    "phonemes": {0: "B", 1: "P"},
    "phonemes_mask": {0: "B", 1: "P"},
    "k_ref": _KV_AXES,
    "v_ref": _KV_AXES,
    "ref_mask": {0: "B", 1: "R"},
    "k_text": _TEXT_KV_AXES,
    "v_text": _TEXT_KV_AXES,
}
DENOISER_AXES: dict[str, dict[int, str]] = {
    "x_t": {0: "B", 1: "S"},
    "mask": {0: "B", 1: "S"},
    "t": {0: "B"},
    "k_ref": _KV_AXES,
    "v_ref": _KV_AXES,
    "ref_mask": {0: "B", 1: "R"},
    "k_text": _TEXT_KV_AXES,
    "v_text": _TEXT_KV_AXES,
    "phonemes_mask": {0: "B", 1: "P"},
    "rope": {1: "S"},
    "velocity": {0: "B", 1: "S"},
}
CODEC_ENCODER_AXES = {"audio": {0: "B", 2: "N"}, "latents": {0: "B", 1: "T"}}
CODEC_DECODER_AXES = {"latents": {0: "B", 1: "T"}, "audio": {0: "B", 2: "N"}}

# Example sizes for tracing: all different and > 1, so no axis gets specialised to a constant.
_EXAMPLE_B, _EXAMPLE_R, _EXAMPLE_P, _EXAMPLE_S = 2, 5, 7, 9


class ConditionEncoderGraph(nn.Module):
    """`DiTModel.encode_conditions` with the condition encoder's positional outputs."""

    def __init__(self, model: DiTModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, ref_latents: Tensor, ref_latents_lengths: Tensor, phonemes: Tensor, phonemes_mask: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        cond = self.model.encode_conditions(ref_latents, ref_latents_lengths, phonemes, phonemes_mask)
        return cond.k_ref, cond.v_ref, cond.ref_mask, cond.k_text, cond.v_text


class DenoiserGraph(nn.Module):
    """`DiTModel.denoise_step` with the denoiser's ten positional inputs."""

    def __init__(self, model: DiTModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        x_t: Tensor,
        mask: Tensor,
        t: Tensor,
        k_ref: Tensor,
        v_ref: Tensor,
        ref_mask: Tensor,
        k_text: Tensor,
        v_text: Tensor,
        phonemes_mask: Tensor,
        rope: Tensor,
    ) -> Tensor:
        cond = Conditions(k_ref, v_ref, ref_mask, k_text, v_text, phonemes_mask)
        v = self.model.denoise_step(x_t, mask, t, cond, rope)
        assert isinstance(v, Tensor)
        return v


def example_condition_inputs(cfg: ModelConfig) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Padded example inputs of the condition encoder (B=2, R=5, P=7)."""
    b, r, p = _EXAMPLE_B, _EXAMPLE_R, _EXAMPLE_P
    generator = torch.Generator().manual_seed(0)
    ref_latents = torch.randn(b, r, cfg.latent_dim, generator=generator)
    ref_latents_lengths = torch.tensor([r, r - 2], dtype=torch.int64)
    phonemes = torch.randint(1, cfg.text.vocab_size, (b, p), generator=generator)
    phonemes_mask = torch.arange(p)[None, :] < torch.tensor([p, p - 3])[:, None]
    return ref_latents, ref_latents_lengths, phonemes, phonemes_mask


def example_denoiser_inputs(model: DiTModel) -> tuple[Tensor, ...]:
    """Example inputs of the denoiser (B=2, S=9), with conditions from the example condition inputs."""
    cfg = model.cfg
    b, s = _EXAMPLE_B, _EXAMPLE_S
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        cond = model.encode_conditions(*example_condition_inputs(cfg))
    x_t = torch.randn(b, s, cfg.latent_dim, generator=generator)
    mask = torch.arange(s)[None, :] < torch.tensor([s, s - 4])[:, None]
    t = torch.tensor([0.75, 0.25], dtype=torch.float32)
    rope = model.rope(s)
    return (x_t, mask, t, cond.k_ref, cond.v_ref, cond.ref_mask, cond.k_text, cond.v_text, cond.phonemes_mask, rope)


@contextlib.contextmanager
def _quiet_export() -> Iterator[None]:
    # The TorchScript-based exporter warns that it is deprecated (DeprecationWarning), tracing warns about the
    # Python values it records (TracerWarning) and both exporters emit UserWarnings about ops; none is a problem
    # for these wrappers (the parity tests prove the graphs), and the tests run with warnings as errors. The
    # filter is local to the export call.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _dynamic_shapes(input_names: Sequence[str], axes: dict[str, dict[int, str]]) -> tuple[dict[int, Any] | None, ...]:
    dims: dict[str, Any] = {}
    shapes: list[dict[int, Any] | None] = []
    for name in input_names:
        spec = axes.get(name)
        if spec is None:
            shapes.append(None)
            continue
        # Named dims: one object per label, so axes with the same label are declared equal (B everywhere, S of
        # x_t and rope ...), and the ONNX graph shows the label.
        shapes.append({axis: dims.setdefault(label, torch.export.Dim(label)) for axis, label in spec.items()})
    return tuple(shapes)


def export_graph(
    module: nn.Module,
    example_inputs: tuple[Tensor, ...],
    path: str | Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    axes: dict[str, dict[int, str]],
    *,
    exporter: Exporter = DEFAULT_EXPORTER,
) -> Path:
    """Exports one wrapper module to a single self-contained .onnx file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    with _quiet_export(), torch.no_grad():
        if exporter == "legacy":
            torch.onnx.export(
                module,
                example_inputs,
                str(path),
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_axes={name: dict(spec) for name, spec in axes.items()},
                opset_version=OPSET_VERSION,
                do_constant_folding=True,
                dynamo=False,
            )
        elif exporter == "dynamo":
            program = torch.onnx.export(
                module,
                example_inputs,
                input_names=list(input_names),
                output_names=list(output_names),
                dynamic_shapes=_dynamic_shapes(input_names, axes),
                opset_version=OPSET_VERSION,
                dynamo=True,
                optimize=True,
            )
            assert program is not None
            program.save(str(path), external_data=False)
        else:
            raise ValueError(f"unknown exporter {exporter!r}; choose legacy or dynamo")
    return path


def export_condition_encoder(model: DiTModel, path: str | Path, *, exporter: Exporter = DEFAULT_EXPORTER) -> Path:
    return export_graph(
        ConditionEncoderGraph(model),
        example_condition_inputs(model.cfg),
        path,
        CONDITION_ENCODER_INPUTS,
        CONDITION_ENCODER_OUTPUTS,
        CONDITION_ENCODER_AXES,
        exporter=exporter,
    )


def export_denoiser(model: DiTModel, path: str | Path, *, exporter: Exporter = DEFAULT_EXPORTER) -> Path:
    return export_graph(
        DenoiserGraph(model),
        example_denoiser_inputs(model),
        path,
        DENOISER_INPUTS,
        DENOISER_OUTPUTS,
        DENOISER_AXES,
        exporter=exporter,
    )


class ExportableCodec(Protocol):
    """What a codec needs for export: its config and an encoder/decoder module pair (StandinCodec, MelCodec)."""

    # Read-only members, so a codec whose encoder is a Module subclass still matches.
    @property
    def cfg(self) -> CodecConfig: ...

    @property
    def encoder(self) -> torch.nn.Module: ...

    @property
    def decoder(self) -> torch.nn.Module: ...

    def config(self) -> CodecConfig: ...

    def eval(self) -> Any: ...


def export_codec(
    codec: ExportableCodec, out_dir: str | Path, *, exporter: Exporter = DEFAULT_EXPORTER
) -> tuple[Path, Path]:
    """Writes out_dir/encoder.onnx and out_dir/decoder.onnx (no sidecars; see export_model_dir)."""
    out_dir = Path(out_dir)
    hop, latent_dim = codec.cfg.hop_samples, codec.cfg.latent_dim
    generator = torch.Generator().manual_seed(2)
    audio = torch.randn(_EXAMPLE_B, 1, 3 * hop, generator=generator) * 0.1
    latents = torch.randn(_EXAMPLE_B, 3, latent_dim, generator=generator)
    encoder = export_graph(
        codec.encoder,
        (audio,),
        out_dir / "encoder.onnx",
        CODEC_ENCODER_INPUTS,
        CODEC_ENCODER_OUTPUTS,
        CODEC_ENCODER_AXES,
        exporter=exporter,
    )
    decoder = export_graph(
        codec.decoder,
        (latents,),
        out_dir / "decoder.onnx",
        CODEC_DECODER_INPUTS,
        CODEC_DECODER_OUTPUTS,
        CODEC_DECODER_AXES,
        exporter=exporter,
    )
    return encoder, decoder


def export_model_dir(
    model: DiTModel,
    codec: ExportableCodec | None,
    out_dir: str | Path,
    *,
    trained: bool,
    model_id: str,
    exporter: Exporter = DEFAULT_EXPORTER,
) -> Path:
    """Writes the Hugging-Face-like layout: dmd/{condition_encoder,denoiser}.onnx and codec/{encoder,decoder}.onnx.

    Each graph gets a sidecar (config, opset, trained, model_id, graph, input and output names). Without a
    codec only dmd/ is written (use the published codec next to it).
    """
    out_dir = Path(out_dir)
    common = {"opset": OPSET_VERSION, "trained": trained, "model_id": model_id}
    model.eval()
    graphs = [
        (
            export_condition_encoder(model, out_dir / "dmd" / "condition_encoder.onnx", exporter=exporter),
            "condition_encoder",
            CONDITION_ENCODER_INPUTS,
            CONDITION_ENCODER_OUTPUTS,
        ),
        (
            export_denoiser(model, out_dir / "dmd" / "denoiser.onnx", exporter=exporter),
            "denoiser",
            DENOISER_INPUTS,
            DENOISER_OUTPUTS,
        ),
    ]
    # Exact torch counts per graph: the encoder holds the text/style encoders and the cross-K/V projections,
    # the denoiser everything else (the ONNX initializers undercount slightly after constant folding).
    counts = _graph_parameter_counts(model)
    for path, graph, inputs, outputs in graphs:
        write_sidecar(
            path,
            model.cfg,
            graph=graph,
            inputs=list(inputs),
            outputs=list(outputs),
            num_parameters=counts[graph],
            **common,
        )
    if codec is not None:
        codec.eval()
        encoder, decoder = export_codec(codec, out_dir / "codec", exporter=exporter)
        # The codec sidecars describe the codec actually exported (kind "standin"), not the model's target codec.
        codec_cfg = replace(model.cfg, codec=codec.config())
        write_sidecar(
            encoder,
            codec_cfg,
            graph="codec_encoder",
            inputs=list(CODEC_ENCODER_INPUTS),
            outputs=list(CODEC_ENCODER_OUTPUTS),
            **common,
        )
        write_sidecar(
            decoder,
            codec_cfg,
            graph="codec_decoder",
            inputs=list(CODEC_DECODER_INPUTS),
            outputs=list(CODEC_DECODER_OUTPUTS),
            **common,
        )
    return out_dir


def build_random_model(preset: str, *, seed: int = 0) -> DiTModel:
    """A DiTModel with seeded random weights in which no layer is left at zero.

    The spec zero-initialises the velocity head and every AdaLN linear, which makes an untrained model output
    exactly v = 0 and every parity test trivially pass; those layers get PyTorch's default init instead.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DiTModel(preset_config(preset))
        for layer in model.zero_initialised_layers():
            layer.reset_parameters()
    return model.eval()


def build_random_model_dir(
    preset: str, out_dir: str | Path, *, seed: int = 0, exporter: Exporter = DEFAULT_EXPORTER
) -> Path:
    """Builds a seeded random DiTModel + StandinCodec and exports the full model folder (trained=False)."""
    model = build_random_model(preset, seed=seed)
    codec = StandinCodec(model.cfg.codec, seed=seed)
    return export_model_dir(
        model, codec, out_dir, trained=False, model_id=f"random-{preset}-seed{seed}", exporter=exporter
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export a random (untrained) smalltts model folder to ONNX.")
    parser.add_argument("--preset", default="tiny", help="full | small | tiny")
    parser.add_argument("--out", required=True, type=Path, help="output folder (dmd/ and codec/ are created)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exporter", choices=["legacy", "dynamo"], default=DEFAULT_EXPORTER)
    args = parser.parse_args(argv)
    build_random_model_dir(args.preset, args.out, seed=args.seed, exporter=args.exporter)
    return 0


def _graph_parameter_counts(model: DiTModel) -> dict[str, int]:
    cross = (".to_k_ref.", ".to_v_ref.", ".to_k_text.", ".to_v_text.", ".k_norm_cross.")
    encoder = 0
    total = 0
    for name, param in model.named_parameters():
        total += param.numel()
        if name.startswith(("phoneme_embedding.", "style_encoder.", "dit.phoneme_proj.")) or any(
            part in name for part in cross
        ):
            encoder += param.numel()
    return {"condition_encoder": encoder, "denoiser": total - encoder}


if __name__ == "__main__":
    raise SystemExit(main())
