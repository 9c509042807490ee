from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.runtime.graph import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    OnnxFileError,
    OnnxGraph,
    choose_providers,
    cpu_threads,
    cuda_provider_options,
    inspect_onnx_file,
    session_options,
    tensorrt_profiles,
    tensorrt_provider_options,
)

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402 - after the importorskip


def _affine_graph(path: Path, *, batch: int | str = "b", external: bool = False) -> Path:
    """y = x @ W + B with an int64 input `k` added as float: (batch, 5, 64) -> (batch, 5, 8)."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((64, 8)).astype(np.float32), "W")
    bias = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "B")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 5, 64])
    k = helper.make_tensor_value_info("k", TensorProto.INT64, [batch])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 5, 8])
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Add", ["h", "B"], ["hb"]),
        helper.make_node("Cast", ["k"], ["kf"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["kf", "axes"], ["k3"]),
        helper.make_node("Add", ["hb", "k3"], ["y"]),
    ]
    axes = numpy_helper.from_array(np.array([1, 2], dtype=np.int64), "axes")
    graph = helper.make_graph(nodes, "affine", [x, k], [y], [weight, bias, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    if external:
        onnx.save(model, path, save_as_external_data=True, location=f"{path.name}.data", size_threshold=100)
    else:
        onnx.save(model, path)
    return path


def test_inputs_are_bound_by_position_and_cast(tmp_path: Path) -> None:
    graph = OnnxGraph(_affine_graph(tmp_path / "a.onnx"), providers=[CPU_PROVIDER])
    x = np.random.default_rng(1).standard_normal((3, 5, 64))  # float64 and int32 on purpose
    k = np.array([0, 1, 2], dtype=np.int32)
    (y,) = graph.run(x, k)
    weight = numpy_helper.to_array(onnx.load(tmp_path / "a.onnx").graph.initializer[0])
    bias = numpy_helper.to_array(onnx.load(tmp_path / "a.onnx").graph.initializer[1])
    expected = x.astype(np.float32) @ weight + bias + k[:, None, None]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="takes 2 inputs"):
        graph.run(x)


def test_accepts_batch_reads_the_batch_axis(tmp_path: Path) -> None:
    dynamic = OnnxGraph(_affine_graph(tmp_path / "dynamic.onnx"), providers=[CPU_PROVIDER])
    fixed = OnnxGraph(_affine_graph(tmp_path / "fixed.onnx", batch=1), providers=[CPU_PROVIDER])
    assert dynamic.accepts_batch
    assert not fixed.accepts_batch
    # An input declared without a batch axis does not count.
    assert OnnxGraph(tmp_path / "fixed.onnx", providers=[CPU_PROVIDER], batch_axes=[None, None]).accepts_batch
    assert fixed.fixed_dim(0, 2) == 64 and dynamic.fixed_dim(0, 0) is None


def test_parameter_count_comes_from_the_initializers(tmp_path: Path) -> None:
    inline = _affine_graph(tmp_path / "inline.onnx")
    external = _affine_graph(tmp_path / "external.onnx", external=True)
    expected = 64 * 8 + 8 + 2
    assert OnnxGraph(inline, providers=[CPU_PROVIDER]).num_parameters == expected
    info = inspect_onnx_file(external)
    assert info.num_parameters == expected
    assert info.external_data == {"external.onnx.data": (tmp_path / "external.onnx.data").stat().st_size}
    assert OnnxGraph(external, providers=[CPU_PROVIDER]).run(np.zeros((1, 5, 64)), np.zeros(1))[0].shape == (1, 5, 8)


def test_a_truncated_file_is_detected(tmp_path: Path) -> None:
    path = _affine_graph(tmp_path / "a.onnx")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(OnnxFileError, match="truncated"):
        inspect_onnx_file(path)
    path.write_bytes(b"")
    with pytest.raises(OnnxFileError, match="empty"):
        inspect_onnx_file(path)
    path.write_bytes(b"\x08\x07")  # a valid protobuf with no graph in it
    with pytest.raises(OnnxFileError, match="no graph"):
        inspect_onnx_file(path)


def test_a_sidecar_is_read_when_present(tmp_path: Path) -> None:
    from model.config import preset_config, write_sidecar

    path = _affine_graph(tmp_path / "a.onnx")
    assert OnnxGraph(path, providers=[CPU_PROVIDER]).sidecar is None
    write_sidecar(path, preset_config("tiny"), trained=False)
    sidecar = OnnxGraph(path, providers=[CPU_PROVIDER]).sidecar
    assert sidecar is not None and sidecar["model"]["preset"] == "tiny" and sidecar["trained"] is False


def test_providers_default_to_cpu_without_cuda() -> None:
    import onnxruntime as ort

    chosen = choose_providers()
    names = [spec if isinstance(spec, str) else spec[0] for spec in chosen]
    assert chosen[-1] == CPU_PROVIDER
    assert ("CUDAExecutionProvider" in names) == ("CUDAExecutionProvider" in ort.get_available_providers())
    assert choose_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_a_missing_graph_is_a_file_not_found_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        OnnxGraph(tmp_path / "missing.onnx")


def test_cuda_provider_options_are_chosen_not_defaulted() -> None:
    options = cuda_provider_options(1)
    assert options == {
        "device_id": "1",
        "cudnn_conv_algo_search": "HEURISTIC",  # not EXHAUSTIVE at every new shape
        "arena_extend_strategy": "kSameAsRequested",  # not power-of-two growth
        "do_copy_in_default_stream": "1",
        "enable_cuda_graph": "0",  # shapes change every batch: nothing to replay
    }
    # A caller's CUDA entry keeps its own options over ours; a bare name gets ours; others pass through.
    [(name, merged), cpu] = choose_providers([(CUDA_PROVIDER, {"device_id": "3"}), CPU_PROVIDER])
    assert (name, cpu) == (CUDA_PROVIDER, CPU_PROVIDER)
    assert merged["device_id"] == "3" and merged["cudnn_conv_algo_search"] == "HEURISTIC"
    assert choose_providers([CUDA_PROVIDER]) == [(CUDA_PROVIDER, cuda_provider_options(0))]


def test_tensorrt_options_keep_engines_in_the_data_dir_and_profiles_cover_the_axes(tmp_path: Path) -> None:
    options = tensorrt_provider_options(0, tmp_path / "trt")
    assert options["trt_fp16_enable"] == "True"
    assert options["trt_engine_cache_path"] == options["trt_timing_cache_path"] == str(tmp_path / "trt")
    profiles = tensorrt_profiles(
        [("x_t", ["batch", "frames", 64]), ("rope", [1, "frames", 64])],
        {"batch": (1, 8, 32), "frames": (1, 75, 450)},
    )
    assert profiles == {
        "trt_profile_min_shapes": "x_t:1x1x64,rope:1x1x64",
        "trt_profile_opt_shapes": "x_t:8x75x64,rope:1x75x64",
        "trt_profile_max_shapes": "x_t:32x450x64,rope:1x450x64",
    }
    assert tensorrt_provider_options(0, None, profiles)["trt_profile_max_shapes"].startswith("x_t:32x450")
    with pytest.raises(ValueError, match="no profile"):
        tensorrt_profiles([("x", ["b"])], {})


def test_sessions_do_not_spin_and_threads_split_between_workers() -> None:
    options = session_options(3)
    assert options.intra_op_num_threads == 3
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert cpu_threads(1, cpus=2) == (2, 1)
    assert cpu_threads(2, cpus=16) == (8, 2)
    assert cpu_threads(4, cpus=2) == (1, 1)


def test_io_binding_on_the_cpu_gives_the_same_outputs_and_counts_uploads(tmp_path: Path) -> None:
    path = _affine_graph(tmp_path / "affine.onnx")
    plain, bound = OnnxGraph(path), OnnxGraph(path, io_binding=True)
    assert not plain.io_binding and bound.io_binding and bound.device_type == "cpu"
    x = np.random.default_rng(1).standard_normal((3, 5, 64))
    k = np.array([1, 2, 3])
    x_on_device = bound.upload(0, x)  # once, then bound by reference in every call
    for _ in range(4):
        np.testing.assert_array_equal(bound.run(x_on_device, k)[0], plain.run(x, k)[0])
    assert bound.uploads == {"x": 1, "k": 4}  # k was an array: uploaded for each call
    assert plain.upload(0, x).dtype == np.float32 and not plain.uploads


def test_graph_inputs_are_read_from_the_file_and_every_dynamic_axis_of_ours_has_a_profile(
    tiny_model_dir: Path,
) -> None:
    from model.config import preset_config
    from model.runtime.graph import read_graph_inputs
    from model.runtime.limits import RuntimeLimits
    from model.runtime.synthesizer import GRAPH_AXES, tensorrt_sizes

    sizes = tensorrt_sizes(preset_config("tiny"), RuntimeLimits())
    for name, axes in GRAPH_AXES.items():
        inputs = read_graph_inputs(tiny_model_dir / name)
        graph = OnnxGraph(tiny_model_dir / name)
        assert [input_name for input_name, _ in inputs] == [i.name for i in graph.inputs]
        named = [
            (input_name, [role if role is not None else dim for dim, role in zip(shape, roles, strict=False)])
            for (input_name, shape), roles in zip(inputs, axes, strict=True)
        ]
        profiles = tensorrt_profiles(named, sizes)  # raises if an axis of ours is dynamic and unnamed
        assert profiles["trt_profile_max_shapes"].count(":") == len(inputs)
    assert sizes["batch"] == (1, 8, 64) and sizes["frames"][2] == 450  # 60 s at 7.5 frames/s
