from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from model.config import CodecConfig, ModelConfig, preset_config
from model.export import (
    CONDITION_ENCODER_INPUTS,
    CONDITION_ENCODER_OUTPUTS,
    DENOISER_INPUTS,
    OPSET_VERSION,
    build_random_model,
    export_codec,
    export_condition_encoder,
    export_denoiser,
)
from model.nn.codec import StandinCodec
from model.nn.dit import DiTModel
from model.rope import rope_angles

GRAPHS = ("dmd/condition_encoder.onnx", "dmd/denoiser.onnx", "codec/encoder.onnx", "codec/decoder.onnx")


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def sessions(tiny_model_dir: Path) -> dict[str, ort.InferenceSession]:
    return {name: _session(tiny_model_dir / name) for name in GRAPHS}


def test_sidecars_carry_the_exact_parameter_split(tiny_model_dir: Path, tiny_model: DiTModel) -> None:
    counts = {
        graph: json.loads((tiny_model_dir / "dmd" / f"{graph}.json").read_text())["num_parameters"]
        for graph in ("condition_encoder", "denoiser")
    }
    assert sum(counts.values()) == sum(p.numel() for p in tiny_model.parameters())
    # The encoder graph holds the text and style encoders: more than their own parameters alone.
    assert counts["condition_encoder"] > sum(p.numel() for p in tiny_model.style_encoder.parameters())


def test_full_preset_splits_as_the_spec_says() -> None:
    from model.export import _graph_parameter_counts

    counts = _graph_parameter_counts(DiTModel(preset_config("full")))
    # spec §3.9: condition encoder ~112.6 M, denoiser ~215.2 M, 327,756,609 in all
    assert counts == {"condition_encoder": 112_564_865, "denoiser": 215_191_744}


def _signature(values: list[ort.NodeArg]) -> list[tuple[str, str, list[int | str]]]:
    return [(v.name, v.type, list(v.shape)) for v in values]


def test_layout_and_sidecars(tiny_model_dir: Path) -> None:
    expected_graphs = ["condition_encoder", "denoiser", "codec_encoder", "codec_decoder"]
    for name, graph in zip(GRAPHS, expected_graphs, strict=True):
        sidecar = json.loads((tiny_model_dir / name).with_suffix(".json").read_text())
        assert sidecar["graph"] == graph
        assert sidecar["opset"] == OPSET_VERSION
        assert sidecar["trained"] is False
        assert sidecar["model_id"] == "random-tiny-seed0"
        cfg = ModelConfig.from_dict(sidecar["model"])
        assert cfg.preset == "tiny"
        assert cfg.codec.kind == "standin"
        proto = onnx.load(str(tiny_model_dir / name), load_external_data=False)
        assert proto.opset_import[0].version == OPSET_VERSION
        # One self-contained file per graph: nothing stored as external data.
        assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in proto.graph.initializer)
    assert sidecar["inputs"] == ["latents"] and sidecar["outputs"] == ["audio"]


def test_condition_encoder_signature(sessions: dict[str, ort.InferenceSession]) -> None:
    session = sessions["dmd/condition_encoder.onnx"]
    # tiny: 2 blocks, 2 heads of 24 channels; the 5-D KV layout is (layers, B, heads, seq, head_dim).
    assert _signature(session.get_inputs()) == [
        ("ref_latents", "tensor(float)", ["B", "R", 64]),
        ("ref_latents_lengths", "tensor(int64)", ["B"]),
        ("phonemes", "tensor(int64)", ["B", "P"]),
        ("phonemes_mask", "tensor(bool)", ["B", "P"]),
    ]
    assert _signature(session.get_outputs()) == [
        ("k_ref", "tensor(float)", [2, "B", 2, "R", 24]),
        ("v_ref", "tensor(float)", [2, "B", 2, "R", 24]),
        ("ref_mask", "tensor(bool)", ["B", "R"]),
        ("k_text", "tensor(float)", [2, "B", 2, "P", 24]),
        ("v_text", "tensor(float)", [2, "B", 2, "P", 24]),
    ]


def test_denoiser_signature(sessions: dict[str, ort.InferenceSession]) -> None:
    session = sessions["dmd/denoiser.onnx"]
    assert _signature(session.get_inputs()) == [
        ("x_t", "tensor(float)", ["B", "S", 64]),
        ("mask", "tensor(bool)", ["B", "S"]),
        ("t", "tensor(float)", ["B"]),
        ("k_ref", "tensor(float)", [2, "B", 2, "R", 24]),
        ("v_ref", "tensor(float)", [2, "B", 2, "R", 24]),
        ("ref_mask", "tensor(bool)", ["B", "R"]),
        ("k_text", "tensor(float)", [2, "B", 2, "P", 24]),
        ("v_text", "tensor(float)", [2, "B", 2, "P", 24]),
        ("phonemes_mask", "tensor(bool)", ["B", "P"]),
        ("rope", "tensor(float)", [1, "S", 16]),
    ]
    assert _signature(session.get_outputs()) == [("velocity", "tensor(float)", ["B", "S", 64])]


def test_codec_signatures(sessions: dict[str, ort.InferenceSession]) -> None:
    encoder, decoder = sessions["codec/encoder.onnx"], sessions["codec/decoder.onnx"]
    assert _signature(encoder.get_inputs()) == [("audio", "tensor(float)", ["B", 1, "N"])]
    assert _signature(encoder.get_outputs()) == [("latents", "tensor(float)", ["B", "T", 64])]
    assert _signature(decoder.get_inputs()) == [("latents", "tensor(float)", ["B", "T", 64])]
    assert _signature(decoder.get_outputs()) == [("audio", "tensor(float)", ["B", 1, "N"])]


def _random_request(cfg: ModelConfig, b: int, r: int, p: int, n: int, seed: int) -> dict[str, np.ndarray]:
    """Inputs for both graphs; with b > 1 every row has its own text, reference and frame lengths."""
    rng = np.random.default_rng(seed)
    ref_lengths = np.array([r] + list(rng.integers(1, r + 1, b - 1)), dtype=np.int64)
    text_lengths = np.array([p] + list(rng.integers(1, p + 1, b - 1)))
    frame_lengths = np.array([n] + list(rng.integers(1, n + 1, b - 1)))
    return {
        "ref_latents": rng.standard_normal((b, r, cfg.latent_dim), dtype=np.float32),
        "ref_latents_lengths": ref_lengths,
        "phonemes": rng.integers(1, cfg.text.vocab_size, (b, p)).astype(np.int64),
        "phonemes_mask": np.arange(p)[None] < text_lengths[:, None],
        "x_t": rng.standard_normal((b, n, cfg.latent_dim), dtype=np.float32),
        "mask": np.arange(n)[None] < frame_lengths[:, None],
        "t": rng.uniform(0, 1, b).astype(np.float32),
    }


def _run_onnx(sessions: dict[str, ort.InferenceSession], x: dict[str, np.ndarray], rope_dim: int) -> list[np.ndarray]:
    """Binds inputs BY POSITION, the way the runtime does."""
    encoder, denoiser = sessions["dmd/condition_encoder.onnx"], sessions["dmd/denoiser.onnx"]
    cond = encoder.run(
        None, dict(zip([i.name for i in encoder.get_inputs()], [x[n] for n in CONDITION_ENCODER_INPUTS], strict=True))
    )
    k_ref, v_ref, ref_mask, k_text, v_text = cond
    rope = rope_angles(x["x_t"].shape[1], rope_dim)
    values = [x["x_t"], x["mask"], x["t"], k_ref, v_ref, ref_mask, k_text, v_text, x["phonemes_mask"], rope]
    assert len(values) == len(DENOISER_INPUTS)
    (velocity,) = denoiser.run(None, dict(zip([i.name for i in denoiser.get_inputs()], values, strict=True)))
    return [*cond, velocity]


@pytest.mark.parametrize(("b", "r", "p", "n"), [(1, 4, 6, 5), (3, 12, 17, 23), (4, 30, 9, 64)])
def test_onnx_matches_torch(sessions: dict[str, ort.InferenceSession], b: int, r: int, p: int, n: int) -> None:
    model = build_random_model("tiny", seed=0)  # the weights of tiny_model_dir
    x = _random_request(model.cfg, b, r, p, n, seed=b)
    onnx_out = _run_onnx(sessions, x, model.cfg.dit.rope_dim)
    t = {k: torch.from_numpy(v) for k, v in x.items()}
    with torch.no_grad():
        cond = model.encode_conditions(t["ref_latents"], t["ref_latents_lengths"], t["phonemes"], t["phonemes_mask"])
        v = model.denoise_step(t["x_t"], t["mask"], t["t"], cond, model.rope(n))
    torch_out = [cond.k_ref, cond.v_ref, cond.ref_mask, cond.k_text, cond.v_text, v]
    names = [*CONDITION_ENCODER_OUTPUTS, "velocity"]
    assert float(np.abs(torch_out[-1].numpy()).max()) > 0.1  # a degenerate (all-zero) model would prove nothing
    for name, ours, theirs in zip(names, onnx_out, torch_out, strict=True):
        assert ours.shape == tuple(theirs.shape), name
        if ours.dtype == np.bool_:
            np.testing.assert_array_equal(ours, theirs.numpy(), err_msg=name)
        else:
            assert float(np.abs(ours - theirs.numpy()).max()) <= 1e-4, name


def test_onnx_dropped_conditions_are_finite(sessions: dict[str, ort.InferenceSession]) -> None:
    cfg = preset_config("tiny")
    x = _random_request(cfg, 2, 6, 5, 7, seed=9)
    x["phonemes_mask"][:] = False
    x["ref_latents_lengths"][:] = 0
    outputs = _run_onnx(sessions, x, cfg.dit.rope_dim)
    assert not outputs[2].any()  # ref_mask all false
    for out in outputs:
        assert np.isfinite(out.astype(np.float32)).all()


def test_codec_onnx_matches_torch(sessions: dict[str, ort.InferenceSession]) -> None:
    codec = StandinCodec(preset_config("tiny").codec, seed=0).eval()
    hop = codec.cfg.hop_samples
    rng = np.random.default_rng(0)
    for b, frames in [(1, 1), (3, 5)]:
        audio = (rng.standard_normal((b, 1, frames * hop)) * 0.1).astype(np.float32)
        (latents,) = sessions["codec/encoder.onnx"].run(None, {"audio": audio})
        (decoded,) = sessions["codec/decoder.onnx"].run(None, {"latents": latents})
        assert latents.shape == (b, frames, 64) and decoded.shape == (b, 1, frames * hop)
        with torch.no_grad():
            expected_latents = codec.encode(torch.from_numpy(audio)).numpy()
            expected_audio = codec.decode(torch.from_numpy(latents)).numpy()
        assert float(np.abs(latents - expected_latents).max()) <= 1e-4
        assert float(np.abs(decoded - expected_audio).max()) <= 1e-4


def test_exported_codec_follows_its_config(tmp_path: Path) -> None:
    codec = StandinCodec(CodecConfig(kind="standin", hop_samples=40, latent_dim=8, hidden_dim=4))
    encoder_path, decoder_path = export_codec(codec, tmp_path)
    (latents,) = _session(encoder_path).run(None, {"audio": np.zeros((2, 1, 200), np.float32)})
    (audio,) = _session(decoder_path).run(None, {"latents": latents})
    assert latents.shape == (2, 5, 8) and audio.shape == (2, 1, 200)


def test_random_model_is_seeded_and_not_degenerate() -> None:
    a, b, c = build_random_model("tiny", seed=0), build_random_model("tiny", seed=0), build_random_model("tiny", seed=1)
    for key, value in a.state_dict().items():
        torch.testing.assert_close(b.state_dict()[key], value)
    assert not torch.equal(a.velocity.weight, c.velocity.weight)
    for layer in a.zero_initialised_layers():
        assert layer.weight.abs().max() > 0


def test_random_model_leaves_global_rng_alone() -> None:
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    build_random_model("tiny", seed=0)
    torch.testing.assert_close(torch.rand(3), expected)


def test_untrained_spec_init_is_zero_but_random_model_is_not() -> None:
    assert DiTModel(preset_config("tiny")).velocity.weight.abs().max() == 0
    assert build_random_model("tiny").velocity.weight.abs().max() > 0


@pytest.mark.slow
def test_dynamo_exporter_gives_the_same_contract(tmp_path: Path) -> None:
    # The legacy (TorchScript) exporter is the default; the dynamo one stays selectable and must agree.
    codec = StandinCodec(CodecConfig(kind="standin", hop_samples=40, latent_dim=8, hidden_dim=4), seed=3).eval()
    encoder_path, decoder_path = export_codec(codec, tmp_path, exporter="dynamo")
    encoder, decoder = _session(encoder_path), _session(decoder_path)
    assert [(i.name, i.type) for i in encoder.get_inputs()] == [("audio", "tensor(float)")]
    assert list(encoder.get_inputs()[0].shape) == ["B", 1, "N"]
    assert list(decoder.get_inputs()[0].shape) == ["B", "T", 8]
    audio = np.random.default_rng(0).standard_normal((3, 1, 200)).astype(np.float32)
    (latents,) = encoder.run(None, {"audio": audio})
    (decoded,) = decoder.run(None, {"latents": latents})
    with torch.no_grad():
        np.testing.assert_allclose(latents, codec.encode(torch.from_numpy(audio)).numpy(), atol=1e-5)
        np.testing.assert_allclose(decoded, codec.decode(torch.from_numpy(latents)).numpy(), atol=1e-5)


def test_text_prior_exports_with_the_same_io(tmp_path: Path) -> None:
    """The demo's diagonal text prior lives inside the denoiser graph: same inputs, parity with torch."""
    from dataclasses import replace

    model = build_random_model("tiny", seed=0)
    model.cfg = replace(model.cfg, dit=replace(model.cfg.dit, text_prior_width_tokens=2.0))
    model.dit.cfg = model.cfg.dit
    export_condition_encoder(model, tmp_path / "dmd" / "condition_encoder.onnx")
    export_denoiser(model, tmp_path / "dmd" / "denoiser.onnx")
    sessions = {name: _session(tmp_path / name) for name in ("dmd/condition_encoder.onnx", "dmd/denoiser.onnx")}
    x = _random_request(model.cfg, 3, 8, 11, 19, seed=3)
    velocity = _run_onnx(sessions, x, model.cfg.dit.rope_dim)[-1]
    t = {k: torch.from_numpy(v) for k, v in x.items()}
    with torch.no_grad():
        cond = model.encode_conditions(t["ref_latents"], t["ref_latents_lengths"], t["phonemes"], t["phonemes_mask"])
        expected = model.denoise_step(t["x_t"], t["mask"], t["t"], cond, model.rope(19))
    assert float(np.abs(velocity - expected.numpy()).max()) <= 1e-4
