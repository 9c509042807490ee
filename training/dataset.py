"""Dataset builder: audio + transcripts (+ speaker ids) -> webdataset tar shards of codec latents and phoneme ids.

    smalltts dataset build --input data/synth/manifest.jsonl --codec-dir models/tiny/codec --out data/tiny

The input is any layout training.corpora reads (a manifest, a folder of audio + .txt, LibriTTS-R, Emilia-style
webdataset tars, a saved Hugging Face dataset). Output:

    OUT/shards/shard-000000.tar      one webdataset sample per clip, key = its running index:
                                       <key>.latents.npy   (n c) float32 codec latents
                                       <key>.phonemes.npy  (p,) int16 phoneme ids (model.text front end)
                                       <key>.json          text, speaker, source, duration_s, num_frames, num_phonemes
                                       <key>.speaker_embedding.npy  (e,) float32, only with --speaker-encoder
    OUT/shards/shard-000000.json     that shard's samples (key, speaker, num_frames) and skipped clips with reasons
    OUT/build.json                   the settings and input size: a later run into OUT must match them
    OUT/index.json                   dataset facts: codec config, shard list, speakers, totals
    OUT/report.json                  the validation report: how many clips were kept and every skipped one, why

Input clip i belongs to shard i // shard_size. A shard is written to a temporary name and renamed when done,
together with its .json, so a rerun skips every finished shard and builds only the missing ones.

Splitting the work: with `num_parts` N and `part_index` I (the CLI's --num-shards / --shard-index), a run
builds only shards I, I+N, I+2N, ...; N runs on N machines over the same input (every reader lists clips in a
fixed order) and into one OUT folder (shared, or copied together afterwards) cover every shard once. Each run
writes index.json and report.json only when it finds every shard finished, so the last part to finish writes
them; or rerun without a part once everything is copied together (it rebuilds nothing).

Within a run, `workers` K > 1 spawns K processes that read, decode, check, resample and phonemize clips while
the main process runs the codec encoder (onnxruntime, CUDA when this onnxruntime has it, else CPU) and the
speaker encoder (torch, on CUDA when torch sees one) on length-sorted batches of the previous shard. The shards
are byte-identical for any K: every clip is prepared the same way and batches are formed per shard.
"""

from __future__ import annotations

import contextlib
import io
import json
import multiprocessing
import os
import tarfile
from collections import Counter, deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from model.config import CodecConfig, ModelConfig, read_sidecar
from model.errors import InputError
from model.runtime.graph import OnnxGraph
from model.text import tokenize
from training.config import DatasetConfig, config_to_dict
from training.corpora import ClipSource as ClipSource  # these three lived here before training.corpora
from training.corpora import DatasetError as DatasetError
from training.corpora import read_audio
from training.corpora import read_manifest as read_manifest
from training.speaker_encoder import SpeakerEncoder, load_speaker_encoder

INDEX_FORMAT = "smalltts-dataset/1"
SPEAKER_BATCH_SIZE = 32  # clips per speaker-encoder forward pass


@dataclass
class ShardReport:
    samples: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class PreparedClip:
    """One input clip after the work a worker process does: audio at the codec rate and phoneme ids, or why not."""

    index: int  # the clip's position in the input list (its sample key)
    source: ClipSource
    audio: np.ndarray | None  # (n,) float32 at the codec rate; None when skipped
    ids: np.ndarray | None  # (p,) int16
    skip_reason: str = ""


# --- the codec encoder -----------------------------------------------------------------------------------


class BatchedCodecEncoder:
    """The codec's encoder.onnx over several clips per call: padded to the longest, trimmed per clip after."""

    def __init__(self, codec_dir: str | Path, intra_op_threads: int = 0) -> None:
        path = Path(codec_dir) / "encoder.onnx"
        if not path.is_file():
            raise DatasetError(f"codec encoder not found: {path} (pass the codec/ folder of a model directory)")
        self.graph = OnnxGraph(path, intra_op_threads=intra_op_threads)
        sidecar = read_sidecar(path)
        # A codec without a sidecar is the published VibeVoice export.
        self.codec: CodecConfig = ModelConfig.from_dict(sidecar["model"]).codec if sidecar else CodecConfig()
        self.sidecar = sidecar

    def encode(self, clips: Sequence[np.ndarray]) -> list[np.ndarray]:
        """(n_i,) float32 audio at the codec rate -> (ceil(n_i / hop), c) latents each."""
        hop = self.codec.hop_samples
        frames = [-(-clip.shape[0] // hop) for clip in clips]
        if not self.graph.accepts_batch:
            groups = [[i] for i in range(len(clips))]
        else:
            groups = [list(range(len(clips)))]
        out: list[np.ndarray] = [np.zeros(0)] * len(clips)
        for group in groups:
            padded = np.zeros((len(group), 1, max(frames[i] for i in group) * hop), dtype=np.float32)  # (b 1 N)
            for row, i in enumerate(group):
                padded[row, 0, : clips[i].shape[0]] = clips[i]
            latents = self.graph.run(padded)[0]  # (b T c)
            for row, i in enumerate(group):
                out[i] = np.ascontiguousarray(latents[row, : frames[i]], dtype=np.float32)
        return out


# --- one clip (runs in a worker process) -----------------------------------------------------------------------


def prepare_clip(index: int, source: ClipSource, sample_rate_hz: int, cfg: DatasetConfig) -> PreparedClip:
    """Reads, checks and resamples one clip and phonemizes its transcript; a failure becomes its skip reason."""
    try:
        if source.problem:
            raise ValueError(source.problem)
        if source.duration_s is not None:  # stated by the corpus: a clip far out of range is never decoded
            check_duration(source.duration_s, cfg)
        ids = phoneme_ids(source.text, cfg)
        samples, source_rate_hz = read_audio(source)
        audio = check_audio(samples, source_rate_hz, sample_rate_hz, cfg)
    except ValueError as exc:
        return PreparedClip(index, source, None, None, str(exc))
    return PreparedClip(index, source, audio, ids)


def check_audio(samples: np.ndarray, source_rate_hz: int, sample_rate_hz: int, cfg: DatasetConfig) -> np.ndarray:
    """(n ch) samples -> (n,) float32 mono at sample_rate_hz; raises ValueError with the reason to skip it."""
    if samples.size == 0:
        raise ValueError("audio has no samples")
    if not np.isfinite(samples).all():
        raise ValueError("audio holds NaN or infinite samples")
    mono = samples.mean(axis=1)
    check_duration(mono.shape[0] / source_rate_hz, cfg)
    if float(np.abs(mono).max()) < cfg.silence_peak:
        raise ValueError("silent audio")
    if source_rate_hz != sample_rate_hz:
        mono = soxr.resample(mono, source_rate_hz, sample_rate_hz, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def check_duration(duration_s: float, cfg: DatasetConfig) -> None:
    if duration_s < cfg.min_duration_s:
        raise ValueError(f"too short ({duration_s:.2f} s < {cfg.min_duration_s:g} s)")
    if duration_s > cfg.max_duration_s:
        raise ValueError(f"too long ({duration_s:.2f} s > {cfg.max_duration_s:g} s)")


def phoneme_ids(text: str, cfg: DatasetConfig) -> np.ndarray:
    """Phoneme ids of a transcript; raises ValueError with the reason it must be skipped."""
    if not text.strip():
        raise ValueError("empty transcript")
    try:
        tokens = tokenize(text, max_tokens=cfg.max_phonemes)
    except InputError as exc:
        raise ValueError(f"transcript unusable: {exc.message}") from None
    return np.asarray(tokens.ids, dtype=np.int16)


def iter_prepared_shards(
    shards: Sequence[int],
    sources: Sequence[ClipSource],
    sample_rate_hz: int,
    cfg: DatasetConfig,
    workers: int,
    on_clip: Callable[[], None] = lambda: None,
) -> Generator[tuple[int, list[PreparedClip]], None, None]:
    """(shard, its prepared clips in input order) for each shard in turn.

    With workers > 1 a spawned process pool prepares the clips, one shard ahead of the one handed out, so
    decoding overlaps the caller's encoding; at most two shards' audio is in memory."""

    def span(shard: int) -> range:
        return range(shard * cfg.shard_size, min((shard + 1) * cfg.shard_size, len(sources)))

    if workers <= 1:
        for shard in shards:
            prepared = []
            for i in span(shard):
                prepared.append(prepare_clip(i, sources[i], sample_rate_hz, cfg))
                on_clip()
            yield shard, prepared
        return
    # spawn, not fork: the parent already runs onnxruntime's thread pools, which a forked child would inherit broken.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    pending: deque[tuple[int, list[Future[PreparedClip]]]] = deque()

    def collect() -> tuple[int, list[PreparedClip]]:
        shard, futures = pending.popleft()
        prepared = []
        for future in futures:
            prepared.append(future.result())
            on_clip()
        return shard, prepared

    try:
        for shard in shards:
            pending.append(
                (shard, [pool.submit(prepare_clip, i, sources[i], sample_rate_hz, cfg) for i in span(shard)])
            )
            if len(pending) > 1:
                yield collect()
        while pending:
            yield collect()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --- shards -------------------------------------------------------------------------------------------------


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0  # byte-identical shards for identical input
    tar.addfile(info, io.BytesIO(data))


def shard_name(index: int) -> str:
    return f"shard-{index:06d}"


def build_shard(
    prepared: Sequence[PreparedClip],
    out_tar: Path,
    encoder: BatchedCodecEncoder,
    cfg: DatasetConfig,
    speaker_encoder: SpeakerEncoder | None,
) -> ShardReport:
    """Encodes one shard's prepared clips in batches and writes it (atomically, via a temporary file)."""
    report = ShardReport()
    ready = [clip for clip in prepared if clip.audio is not None]
    for clip in prepared:
        if clip.audio is None:
            report.skipped.append({"audio": clip.source.name, "reason": clip.skip_reason})
    rate = encoder.codec.sample_rate_hz
    # Sorted by length so each batch pads little; the order (and so every batch) depends on the input only.
    ready.sort(key=lambda clip: (_samples(clip).shape[0], clip.index))
    encoded: dict[int, np.ndarray] = {}
    for start in range(0, len(ready), cfg.encode_batch_size):
        chunk = ready[start : start + cfg.encode_batch_size]
        for clip, latents in zip(chunk, encoder.encode([_samples(clip) for clip in chunk]), strict=True):
            encoded[clip.index] = latents
    embeddings: dict[int, np.ndarray] = {}
    if speaker_encoder is not None:
        for start in range(0, len(ready), SPEAKER_BATCH_SIZE):
            chunk = ready[start : start + SPEAKER_BATCH_SIZE]
            batch = speaker_encoder.embed_batch([_samples(clip) for clip in chunk], rate)  # (b e)
            embeddings.update((clip.index, batch[row]) for row, clip in enumerate(chunk))
    ready.sort(key=lambda clip: clip.index)

    tmp = out_tar.with_suffix(".tar.tmp")
    with tarfile.open(tmp, "w") as tar:
        for clip in ready:
            latents, ids = encoded[clip.index], clip.ids
            assert ids is not None  # set whenever audio is
            if not np.isfinite(latents).all():
                report.skipped.append({"audio": clip.source.name, "reason": "codec produced NaN latents"})
                continue
            key = f"{clip.index:09d}"
            meta = {
                "text": clip.source.text,
                "speaker": clip.source.speaker,
                "source": clip.source.name,
                "duration_s": round(_samples(clip).shape[0] / rate, 4),
                "num_frames": int(latents.shape[0]),
                "num_phonemes": int(ids.shape[0]),
            }
            _add_member(tar, f"{key}.latents.npy", _npy_bytes(latents))
            _add_member(tar, f"{key}.phonemes.npy", _npy_bytes(ids))
            _add_member(tar, f"{key}.json", json.dumps(meta).encode())
            if speaker_encoder is not None:
                _add_member(tar, f"{key}.speaker_embedding.npy", _npy_bytes(embeddings[clip.index]))
            report.samples.append(
                {
                    "key": key,
                    "speaker": clip.source.speaker,
                    "num_frames": meta["num_frames"],
                    "num_phonemes": meta["num_phonemes"],
                }
            )
    os.replace(tmp, out_tar)
    return report


def _samples(clip: PreparedClip) -> np.ndarray:
    if clip.audio is None:
        raise ValueError(f"clip {clip.index} was skipped: {clip.skip_reason}")
    return clip.audio


def build_dataset(
    sources: Sequence[ClipSource],
    out_dir: str | Path,
    cfg: DatasetConfig,
    *,
    progress: bool = True,
    workers: int = 1,
    num_parts: int = 1,
    part_index: int = 0,
) -> dict[str, Any]:
    """Builds (or resumes building) the shards of `sources` in out_dir, or only part `part_index` of
    `num_parts` of them (shards part_index, part_index + num_parts, ...).

    Returns the validation report: of the whole dataset once every shard exists (index.json and report.json
    are written then), else of this part's shards, with "complete": False and how many shards are missing."""
    if workers < 1:
        raise DatasetError(f"workers must be >= 1, got {workers}")
    if num_parts < 1 or not 0 <= part_index < num_parts:
        raise DatasetError(f"need num_parts >= 1 and 0 <= part_index < num_parts, got {part_index} of {num_parts}")
    out_dir = Path(out_dir)
    shard_dir = out_dir / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    if not sources:
        raise DatasetError("no input clips: the manifest or folder is empty")
    # On a CPU the encoder's threads leave the workers their cores (0 = ONNX Runtime's default, every core).
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    encoder = BatchedCodecEncoder(cfg.codec_dir, intra_op_threads=0 if workers == 1 else max(1, cpus - workers))
    speaker_encoder = (
        load_speaker_encoder(cfg.speaker_encoder, _torch_device()) if cfg.speaker_encoder != "none" else None
    )
    _check_build_facts(out_dir, {"config": config_to_dict(cfg), "num_inputs": len(sources)})

    num_shards = -(-len(sources) // cfg.shard_size)
    mine = range(part_index, num_shards, num_parts)
    todo = [shard for shard in mine if not _is_finished(shard_dir, shard)]
    # The bar names where the codec runs: CUDAExecutionProvider when this onnxruntime has CUDA and a GPU works.
    desc = f"dataset build (codec on {encoder.graph.providers[0].removesuffix('ExecutionProvider')})"
    bar = _progress_bar(sum(min(cfg.shard_size, len(sources) - s * cfg.shard_size) for s in todo), progress, desc)
    prepared_shards = iter_prepared_shards(todo, sources, encoder.codec.sample_rate_hz, cfg, workers, bar.update)
    with contextlib.closing(prepared_shards):  # on an error, the worker pool stops now, not when collected
        for shard, prepared in prepared_shards:
            report = build_shard(prepared, shard_dir / f"{shard_name(shard)}.tar", encoder, cfg, speaker_encoder)
            samples = {"samples": report.samples, "skipped": report.skipped}
            _write_json(shard_dir / f"{shard_name(shard)}.json", samples)
    bar.close()

    missing = [shard for shard in range(num_shards) if not _is_finished(shard_dir, shard)]
    if missing:
        summary = _summarize([_read_shard_report(shard_dir, shard) for shard in mine])
        return {**summary, "complete": False, "num_shards_missing": len(missing)}
    reports = [_read_shard_report(shard_dir, shard) for shard in range(num_shards)]
    return _write_index(out_dir, encoder, cfg, reports, speaker_encoder)


def _torch_device() -> str:
    """Where the speaker encoder runs: the GPU when torch sees one."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _check_build_facts(out_dir: Path, facts: dict[str, Any]) -> None:
    """Refuses an OUT folder built with other settings or input; records these otherwise."""
    path = out_dir / "build.json"
    if path.is_file() and json.loads(path.read_text()) != facts:
        raise DatasetError(f"{out_dir} holds a build with other settings or input; use a new --out folder or delete it")
    _write_json(path, facts)


def _write_json(path: Path, payload: Any) -> None:
    # Via a name unique to this process, then renamed: parts running at once into one folder never mix bytes.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=1 if path.parent.name == "shards" else 2) + "\n")
    os.replace(tmp, path)


def _is_finished(shard_dir: Path, shard: int) -> bool:
    """A shard is done once its .json exists: it is written after the .tar is renamed into place."""
    return (shard_dir / f"{shard_name(shard)}.tar").is_file() and (shard_dir / f"{shard_name(shard)}.json").is_file()


def _read_shard_report(shard_dir: Path, shard: int) -> ShardReport:
    saved = json.loads((shard_dir / f"{shard_name(shard)}.json").read_text())
    return ShardReport(saved["samples"], saved["skipped"])


def _progress_bar(total: int, enabled: bool, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="clip", desc=desc, disable=not enabled)


def _write_index(
    out_dir: Path,
    encoder: BatchedCodecEncoder,
    cfg: DatasetConfig,
    reports: Sequence[ShardReport],
    speaker_encoder: SpeakerEncoder | None,
) -> dict[str, Any]:
    samples = [sample for report in reports for sample in report.samples]
    frames = [sample["num_frames"] for sample in samples]
    speakers = Counter(sample["speaker"] for sample in samples)
    index = {
        "format": INDEX_FORMAT,
        "codec": config_to_dict(encoder.codec),
        "codec_dir": str(Path(cfg.codec_dir).resolve()),
        "latent_dim": encoder.codec.latent_dim,
        "frame_rate_hz": encoder.codec.frame_rate_hz,
        "shards": [f"shards/{shard_name(i)}.tar" for i in range(len(reports))],
        "num_samples": len(samples),
        "num_frames": int(sum(frames)),
        "hours": round(sum(frames) / encoder.codec.frame_rate_hz / 3600, 4),
        "speakers": dict(sorted(speakers.items())),
        "speaker_encoder": speaker_encoder.name if speaker_encoder is not None else None,
        "speaker_embedding_dim": speaker_encoder.dim if speaker_encoder is not None else None,
    }
    _write_json(out_dir / "index.json", index)
    report = {**_summarize(reports), "complete": True}
    _write_json(out_dir / "report.json", report)
    return report


def _summarize(reports: Sequence[ShardReport]) -> dict[str, Any]:
    samples = [sample for report in reports for sample in report.samples]
    skipped = [item for report in reports for item in report.skipped]
    speakers = Counter(sample["speaker"] for sample in samples)
    reasons = Counter(item["reason"].split(" (")[0] for item in skipped)
    return {
        "num_inputs": len(samples) + len(skipped),
        "num_kept": len(samples),
        "num_skipped": len(skipped),
        "skipped_by_reason": dict(reasons.most_common()),
        "skipped": skipped,
        "num_speakers": len(speakers),
        "single_clip_speakers": sorted(name for name, count in speakers.items() if count < 2),
    }


def read_index(data_dir: str | Path) -> dict[str, Any]:
    path = Path(data_dir) / "index.json"
    if not path.is_file():
        raise DatasetError(f"{data_dir} is not a built dataset (no index.json); run `smalltts dataset build` first")
    index: dict[str, Any] = json.loads(path.read_text())
    if index.get("format") != INDEX_FORMAT:
        raise DatasetError(f"{path}: unknown dataset format {index.get('format')!r}")
    return index
