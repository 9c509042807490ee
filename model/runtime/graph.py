"""One ONNX graph and its ONNX Runtime session: the only place that chooses execution providers.

Inputs are bound by position (spec §1.3: the published graphs' input names are unknown, their order is the
contract). Each input is cast to the dtype the graph declares, so callers may pass int32 ids or float64 times.

The parameter count and the external-data files of a graph are read from the `.onnx` file itself with a
small protobuf wire-format reader, because the `onnx` package is a training-side dependency and ONNX Runtime
does not expose initializers. The same reader tells a complete file from a truncated one (see
`inspect_onnx_file`), which is how `model.runtime.assets` checks a download.
"""

from __future__ import annotations

import ctypes.util
import logging
import mmap
import os
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from model.config import read_sidecar
from model.errors import ModelError

logger = logging.getLogger(__name__)

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
TENSORRT_PROVIDER = "TensorrtExecutionProvider"

# A provider list as ONNX Runtime takes it: names, or (name, options) pairs.
ProviderSpec = str | tuple[str, dict[str, str]]

# ONNX type strings as ONNX Runtime reports them -> numpy dtypes.
_ORT_DTYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
}

# Whether CUDA really loaded in this process (None = not tried yet). onnxruntime-gpu lists the CUDA provider
# even without a GPU or without the CUDA libraries, then logs an error and falls back to CPU; remembering the
# first outcome keeps that error from repeating for every graph.
_cuda_works: bool | None = None
_cuda_lock = threading.Lock()


@dataclass(frozen=True)
class GraphInput:
    name: str
    shape: tuple[int | str | None, ...]  # ints are fixed sizes; str / None are dynamic axes
    dtype: type[np.generic]


@dataclass(frozen=True)
class OnnxFileInfo:
    """What the protobuf of one `.onnx` file says about itself."""

    num_parameters: int  # elements of all top-level initializers
    external_data: dict[str, int]  # file name (relative to the .onnx) -> bytes it must hold at least


class OnnxFileError(ModelError, ValueError):
    """The file is not a complete ONNX model (truncated download, wrong file)."""


def cpu_threads(workers: int = 1, cpus: int | None = None) -> tuple[int, int]:
    """(intra-op threads of each worker's graphs, intra-op threads of the reference encoder) on a CPU.

    The workers split the cores between them; the codec encoder runs in request threads next to them (once per
    new voice), so it gets one thread on a small machine and two on a larger one rather than a full pool that
    would fight the workers for the same cores.
    """
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    worker = max(1, cpus // max(1, workers))
    return worker, 1 if cpus <= 4 else 2


def session_options(intra_op_threads: int) -> ort.SessionOptions:
    """All graph optimizations, `intra_op_threads` threads (0: ONNX Runtime's default), and no spin-waiting.

    ONNX Runtime's pool threads spin for a while after each op by default, which burns the cores that other
    sessions (the other workers, the reference encoder, the event loop) need; idle threads sleep instead.
    """
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = intra_op_threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: ORT warns about unused initializers in exported graphs
    return options


def cuda_provider_options(device_id: int = 0) -> dict[str, str]:
    """The CUDA provider's options, chosen rather than left at their defaults:

    - cudnn_conv_algo_search HEURISTIC: the default EXHAUSTIVE benchmarks every convolution algorithm at every
      new input shape, and every batch brings new shapes (lengths vary), so the first request of each shape
      would pay seconds; cuDNN's heuristic pick is close and free.
    - arena_extend_strategy kSameAsRequested: the default kNextPowerOfTwo doubles the arena on growth; with
      shapes that vary per batch that strands up to half of the GPU memory.
    - do_copy_in_default_stream 1: host<->device copies stay ordered with the compute on one stream (the
      default, written down because I/O binding relies on it).
    - enable_cuda_graph 0: a captured CUDA graph replays fixed shapes at fixed addresses; our batches change
      length and size every call, so there is nothing to replay.
    """
    return {
        "device_id": str(device_id),
        "cudnn_conv_algo_search": "HEURISTIC",
        "arena_extend_strategy": "kSameAsRequested",
        "do_copy_in_default_stream": "1",
        "enable_cuda_graph": "0",
    }


def tensorrt_provider_options(
    device_id: int = 0, cache_dir: str | Path | None = None, profiles: dict[str, str] | None = None
) -> dict[str, str]:
    """The TensorRT provider's options: fp16 kernels, engines and timing cache kept in `cache_dir` (the data
    dir) so a restart does not rebuild them, and the shape profiles of `tensorrt_profiles` when given."""
    options = {"device_id": str(device_id), "trt_fp16_enable": "True"}
    if cache_dir is not None:
        folder = str(Path(cache_dir))
        options |= {
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": folder,
            "trt_timing_cache_enable": "True",
            "trt_timing_cache_path": folder,
        }
    return options | (profiles or {})


def tensorrt_profiles(
    inputs: Sequence[tuple[str, Sequence[int | str | None]]],
    dynamic_sizes: dict[str, tuple[int, int, int]],
) -> dict[str, str]:
    """TensorRT min/opt/max shape profiles: each dynamic axis named in `dynamic_sizes` ("batch", "frames", ...)
    gets its (min, opt, max); a fixed axis keeps its size. `inputs` are (name, shape) with axis names as
    strings, as ONNX Runtime reports them."""
    rows: dict[str, list[str]] = {
        "trt_profile_min_shapes": [],
        "trt_profile_opt_shapes": [],
        "trt_profile_max_shapes": [],
    }
    for name, shape in inputs:
        dims: list[tuple[int, int, int]] = []
        for dim in shape:
            if isinstance(dim, int):
                dims.append((dim, dim, dim))
            elif isinstance(dim, str) and dim in dynamic_sizes:
                dims.append(dynamic_sizes[dim])
            else:
                raise ValueError(f"input {name}: no profile for the dynamic axis {dim!r}")
        for key, pick in zip(rows, range(3), strict=True):
            rows[key].append(f"{name}:{'x'.join(str(d[pick]) for d in dims)}")
    return {key: ",".join(values) for key, values in rows.items()}


def _tensorrt_loads() -> bool:
    """Whether TensorRT itself (libnvinfer) is on this machine; onnxruntime-gpu lists the provider regardless."""
    return any(ctypes.util.find_library(name) for name in ("nvinfer", "nvinfer_10"))


def choose_providers(
    requested: Sequence[ProviderSpec] | None = None, *, device_id: int = 0, tensorrt_cache_dir: Path | None = None
) -> list[ProviderSpec]:
    """TensorRT (when TensorRT is installed), CUDA, then CPU when this onnxruntime build has CUDA (and it has not
    failed to load before), else CPU. A requested CUDA provider without options gets `cuda_provider_options`."""
    if requested is not None:
        return [_with_cuda_defaults(spec) for spec in requested]
    available = ort.get_available_providers()
    if CUDA_PROVIDER not in available or _cuda_works is False:
        return [CPU_PROVIDER]
    chosen: list[ProviderSpec] = []
    if TENSORRT_PROVIDER in available and _tensorrt_loads():
        if tensorrt_cache_dir is not None:
            tensorrt_cache_dir.mkdir(parents=True, exist_ok=True)
        chosen.append((TENSORRT_PROVIDER, tensorrt_provider_options(device_id, tensorrt_cache_dir)))
    return [*chosen, (CUDA_PROVIDER, cuda_provider_options(device_id)), CPU_PROVIDER]


def _with_cuda_defaults(spec: ProviderSpec) -> ProviderSpec:
    """Our CUDA options under the caller's (theirs win): ("CUDAExecutionProvider", {"device_id": "1"}) keeps
    device 1 and gains the rest."""
    if isinstance(spec, str):
        return (CUDA_PROVIDER, cuda_provider_options()) if spec == CUDA_PROVIDER else spec
    name, options = spec
    if name != CUDA_PROVIDER:
        return spec
    device_id = int(options.get("device_id", 0))
    return (name, cuda_provider_options(device_id) | dict(options))


def _with_profiles(
    spec: ProviderSpec, path: Path, axes: Sequence[Sequence[str | None]], sizes: dict[str, tuple[int, int, int]]
) -> ProviderSpec:
    """The TensorRT entry with min/opt/max shape profiles: input i's axis j plays the role axes[i][j] ("batch",
    "frames", ...; None = fixed), whose sizes come from `sizes`."""
    if isinstance(spec, str) or spec[0] != TENSORRT_PROVIDER:
        return spec
    inputs = read_graph_inputs(path)
    named = [
        (name, [role if role is not None else dim for dim, role in zip(shape, roles, strict=False)])
        for (name, shape), roles in zip(inputs, axes, strict=True)
    ]
    try:
        return (spec[0], spec[1] | tensorrt_profiles(named, sizes))
    except ValueError as exc:  # an axis we did not expect to be dynamic: TensorRT profiles it from the shapes seen
        logger.warning("%s: no TensorRT shape profiles (%s)", path, exc)
        return spec


def _provider_name(spec: ProviderSpec) -> str:
    return spec if isinstance(spec, str) else spec[0]


class OnnxGraph:
    """An inference session over one `.onnx` file, plus its sidecar (None for the published graphs).

    `batch_axes[i]` is the axis of input i that holds the batch (None for an input without one, like the
    denoiser's rope table); by default axis 0 of every input.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        providers: Sequence[ProviderSpec] | None = None,
        intra_op_threads: int = 0,
        batch_axes: Sequence[int | None] | None = None,
        io_binding: bool | None = None,
        tensorrt_cache_dir: Path | None = None,
        tensorrt_axes: Sequence[Sequence[str | None]] | None = None,
        tensorrt_sizes: dict[str, tuple[int, int, int]] | None = None,
    ) -> None:
        global _cuda_works
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ONNX graph not found: {self.path}")
        self.sidecar: dict[str, Any] | None = read_sidecar(self.path)
        options = session_options(intra_op_threads)
        wanted = choose_providers(providers, tensorrt_cache_dir=tensorrt_cache_dir)
        if tensorrt_axes is not None and tensorrt_sizes is not None:
            wanted = [_with_profiles(spec, self.path, tensorrt_axes, tensorrt_sizes) for spec in wanted]
        names = [_provider_name(spec) for spec in wanted]
        with _cuda_lock:
            self._session = ort.InferenceSession(str(self.path), sess_options=options, providers=wanted)
            if CUDA_PROVIDER in names and _cuda_works is None:
                _cuda_works = CUDA_PROVIDER in self._session.get_providers()
                if not _cuda_works:
                    logger.warning("CUDAExecutionProvider is listed but did not load; running on CPU")
        self.providers: list[str] = list(self._session.get_providers())
        on_gpu = CUDA_PROVIDER in self.providers or TENSORRT_PROVIDER in self.providers
        self.device_type = "cuda" if on_gpu else "cpu"
        cuda_options = self._session.get_provider_options().get(CUDA_PROVIDER, {})
        self.device_id = int(cuda_options.get("device_id", 0)) if on_gpu else 0
        # I/O binding: inputs placed on the device once and bound by reference (see `upload`); on by default
        # where there is a device to upload to, and selectable on the CPU so tests can count the uploads.
        self.io_binding = on_gpu if io_binding is None else io_binding
        self.uploads: Counter[str] = Counter()  # host -> device copies per input name (under I/O binding)
        self.inputs: tuple[GraphInput, ...] = tuple(
            GraphInput(
                name=arg.name,
                shape=tuple(arg.shape) if arg.shape is not None else (),
                dtype=_ORT_DTYPES.get(arg.type, np.float32),
            )
            for arg in self._session.get_inputs()
        )
        self.output_names: tuple[str, ...] = tuple(arg.name for arg in self._session.get_outputs())
        axes = list(batch_axes) if batch_axes is not None else [0] * len(self.inputs)
        if len(axes) != len(self.inputs):
            raise ValueError(f"{self.path}: expected {len(axes)} inputs, the graph has {len(self.inputs)}")
        self._batch_axes: tuple[int | None, ...] = tuple(axes)
        self._file_info: OnnxFileInfo | None = None

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def accepts_batch(self) -> bool:
        """False when any batched input has a fixed size on its batch axis (an export traced at batch 1)."""
        for graph_input, axis in zip(self.inputs, self._batch_axes, strict=True):
            if axis is None or axis >= len(graph_input.shape):
                continue
            if isinstance(graph_input.shape[axis], int):
                return False
        return True

    def fixed_dim(self, input_index: int, axis: int) -> int | None:
        """The fixed size of one input axis, or None when it is dynamic (or the rank is unknown)."""
        shape = self.inputs[input_index].shape
        if axis >= len(shape):
            return None
        dim = shape[axis]
        return dim if isinstance(dim, int) else None

    @property
    def num_parameters(self) -> int:
        """The exporter's exact count when the sidecar has it (constant folding merges a few initializers),
        else the elements of the graph's initializers."""
        declared = (self.sidecar or {}).get("num_parameters")
        return int(declared) if isinstance(declared, int) else self.file_info.num_parameters

    @property
    def file_info(self) -> OnnxFileInfo:
        if self._file_info is None:
            self._file_info = inspect_onnx_file(self.path)
        return self._file_info

    def upload(self, index: int, array: Any) -> Any:
        """Input `index` where the session runs, to bind in several `run` calls: under I/O binding an OrtValue on
        the device (one host -> device copy, counted in `uploads`), else the array in the graph's dtype."""
        graph_input = self.inputs[index]
        value = np.ascontiguousarray(array, dtype=graph_input.dtype)
        if not self.io_binding:
            return value
        self.uploads[graph_input.name] += 1
        return ort.OrtValue.ortvalue_from_numpy(value, self.device_type, self.device_id)

    def run(self, *arrays: Any) -> list[np.ndarray]:
        """Runs the graph with inputs bound by position; returns every output in graph order, on the host.

        An input may be an array or what `upload` returned; under I/O binding arrays are uploaded for this call.
        """
        if len(arrays) != len(self.inputs):
            raise ValueError(f"{self.name}: takes {len(self.inputs)} inputs, got {len(arrays)}")
        if self.io_binding or any(isinstance(array, ort.OrtValue) for array in arrays):
            return self._run_bound(arrays)
        feeds = {
            graph_input.name: np.ascontiguousarray(array, dtype=graph_input.dtype)
            for graph_input, array in zip(self.inputs, arrays, strict=True)
        }
        outputs: list[np.ndarray] = self._session.run(None, feeds)
        return outputs

    def _run_bound(self, arrays: Sequence[Any]) -> list[np.ndarray]:
        binding = self._session.io_binding()
        for index, (graph_input, array) in enumerate(zip(self.inputs, arrays, strict=True)):
            value = array if isinstance(array, ort.OrtValue) else self.upload(index, array)
            if isinstance(value, ort.OrtValue):
                binding.bind_ortvalue_input(graph_input.name, value)
            else:
                binding.bind_cpu_input(graph_input.name, value)
        for name in self.output_names:
            binding.bind_output(name, self.device_type, self.device_id)
        self._session.run_with_iobinding(binding)
        outputs: list[np.ndarray] = binding.copy_outputs_to_cpu()
        return outputs


# --- a minimal protobuf reader for ModelProto -> GraphProto -> TensorProto ---------------------------------
#
# Field numbers from onnx.proto: ModelProto.graph = 7; GraphProto.initializer = 5; TensorProto.dims = 1,
# TensorProto.external_data = 13 (StringStringEntryProto: key = 1, value = 2).

_MODEL_GRAPH = 7
_GRAPH_INITIALIZER = 5
_GRAPH_INPUT = 11
_TENSOR_DIMS = 1
_TENSOR_EXTERNAL_DATA = 13
# ValueInfoProto.name = 1, .type = 2; TypeProto.tensor_type = 1; TypeProto.Tensor.shape = 2;
# TensorShapeProto.dim = 1; Dimension.dim_value = 1, .dim_param = 2.


def _read_varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end:
            raise OnnxFileError("protobuf varint runs past the end of its message")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise OnnxFileError("protobuf varint longer than 10 bytes")


def _iter_fields(buf: memoryview, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yields (field number, wire type, value or payload start, payload end) for each field in [start, end)."""
    pos = start
    while pos < end:
        key, pos = _read_varint(buf, pos, end)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _read_varint(buf, pos, end)
            yield number, wire_type, value, pos
        elif wire_type == 1:
            pos += 8
            yield number, wire_type, pos - 8, pos
        elif wire_type == 2:
            length, pos = _read_varint(buf, pos, end)
            if pos + length > end:
                raise OnnxFileError("protobuf field runs past the end of the file (truncated?)")
            yield number, wire_type, pos, pos + length
            pos += length
        elif wire_type == 5:
            pos += 4
            yield number, wire_type, pos - 4, pos
        else:
            raise OnnxFileError(f"unsupported protobuf wire type {wire_type}")
        if pos > end:
            raise OnnxFileError("protobuf field runs past the end of the file (truncated?)")


def _tensor_facts(buf: memoryview, start: int, end: int) -> tuple[int, dict[str, int]]:
    """(element count, {external file: bytes needed}) of one TensorProto."""
    count = 1
    external: dict[str, str] = {}
    for number, wire_type, a, b in _iter_fields(buf, start, end):
        if number == _TENSOR_DIMS:
            if wire_type == 0:
                count *= a
            elif wire_type == 2:  # packed repeated int64
                pos = a
                while pos < b:
                    dim, pos = _read_varint(buf, pos, b)
                    count *= dim
        elif number == _TENSOR_EXTERNAL_DATA and wire_type == 2:
            key = value = ""
            for entry_number, _, c, d in _iter_fields(buf, a, b):
                if entry_number == 1:
                    key = bytes(buf[c:d]).decode()
                elif entry_number == 2:
                    value = bytes(buf[c:d]).decode()
            external[key] = value
    needs: dict[str, int] = {}
    if "location" in external:
        offset = int(external.get("offset", "0") or 0)
        length = int(external.get("length", "0") or 0)
        needs[external["location"]] = offset + length
    return count, needs


def inspect_onnx_file(path: str | Path) -> OnnxFileInfo:
    """Parameter count and external-data needs of an `.onnx` file; raises OnnxFileError if it is incomplete."""
    path = Path(path)
    with path.open("rb") as handle:
        if path.stat().st_size == 0:
            raise OnnxFileError(f"{path}: empty file")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            buf = memoryview(mapped)
            try:
                graph: tuple[int, int] | None = None
                for number, wire_type, a, b in _iter_fields(buf, 0, len(buf)):
                    if number == _MODEL_GRAPH and wire_type == 2:
                        graph = (a, b)
                if graph is None:
                    raise OnnxFileError(f"{path}: no graph in the file (not an ONNX model?)")
                num_parameters = 0
                external: dict[str, int] = {}
                for number, wire_type, a, b in _iter_fields(buf, *graph):
                    if number == _GRAPH_INITIALIZER and wire_type == 2:
                        count, needs = _tensor_facts(buf, a, b)
                        num_parameters += count
                        for name, size in needs.items():
                            external[name] = max(external.get(name, 0), size)
            except OnnxFileError as exc:
                raise OnnxFileError(f"{path}: {exc}") from None
            finally:
                buf.release()
    return OnnxFileInfo(num_parameters=num_parameters, external_data=external)


def read_graph_inputs(path: str | Path) -> list[tuple[str, list[int | str | None]]]:
    """(name, shape) of each graph input, read from the file without a session (fixed sizes as ints, named
    dynamic axes as strings, unnamed ones as None): what TensorRT shape profiles are written against."""
    inputs: list[tuple[str, list[int | str | None]]] = []
    with Path(path).open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        buf = memoryview(mapped)
        try:
            for number, wire_type, a, b in _iter_fields(buf, 0, len(buf)):
                if number != _MODEL_GRAPH or wire_type != 2:
                    continue
                for g_number, g_wire, c, d in _iter_fields(buf, a, b):
                    if g_number != _GRAPH_INPUT or g_wire != 2:
                        continue
                    name, shape = "", []
                    for v_number, _, e, f in _iter_fields(buf, c, d):
                        if v_number == 1:
                            name = bytes(buf[e:f]).decode()
                        elif v_number == 2:
                            shape = _shape_of_type(buf, e, f)
                    inputs.append((name, shape))
        finally:
            buf.release()
    return inputs


def _shape_of_type(buf: memoryview, start: int, end: int) -> list[int | str | None]:
    shape: list[int | str | None] = []
    for t_number, t_wire, a, b in _iter_fields(buf, start, end):
        if t_number != 1 or t_wire != 2:  # tensor_type
            continue
        for s_number, s_wire, c, d in _iter_fields(buf, a, b):
            if s_number != 2 or s_wire != 2:  # shape
                continue
            for dim_number, dim_wire, e, f in _iter_fields(buf, c, d):
                if dim_number != 1 or dim_wire != 2:  # dim
                    continue
                dim: int | str | None = None
                for x_number, x_wire, g, h in _iter_fields(buf, e, f):
                    if x_number == 1 and x_wire == 0:
                        dim = g
                    elif x_number == 2 and x_wire == 2:
                        dim = bytes(buf[g:h]).decode()
                shape.append(dim)
    return shape
