"""Dataset builder: audio + transcripts (+ speaker ids) -> webdataset tar shards of codec latents and phoneme ids.

    smalltts dataset build --manifest data/synth/manifest.jsonl --codec-dir models/tiny/codec --out data/tiny

Input is a manifest (`.jsonl` rows {"audio", "text", "speaker"?}, or `.tsv`/`.csv` with a header naming the
columns audio, text and optionally speaker; relative paths are relative to the manifest) or a folder of audio
files each with a same-stem `.txt` transcript (the speaker is the file's parent folder). Output:

    OUT/shards/shard-000000.tar      one webdataset sample per clip, key = its running index:
                                       <key>.latents.npy   (n c) float32 codec latents
                                       <key>.phonemes.npy  (p,) int16 phoneme ids (model.text front end)
                                       <key>.json          text, speaker, source, duration_s, num_frames, num_phonemes
                                       <key>.speaker_embedding.npy  (e,) float32, only with --speaker-encoder
    OUT/shards/shard-000000.json     that shard's samples (key, speaker, num_frames) and skipped clips with reasons
    OUT/index.json                   dataset facts: codec config, shard list, speakers, totals
    OUT/report.json                  the validation report: how many clips were kept and every skipped one, why

Input clip i belongs to shard i // shard_size. A shard is written to a temporary name and renamed when done,
together with its .json, so an interrupted build resumes at the first shard that is missing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tarfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from model.config import CodecConfig, ModelConfig, read_sidecar
from model.errors import InputError
from model.runtime.graph import OnnxGraph
from model.text import tokenize
from training.config import DatasetConfig, config_to_dict
from training.speaker_encoder import SpeakerEncoder, load_speaker_encoder

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
INDEX_FORMAT = "smalltts-dataset/1"


class DatasetError(ValueError):
    """The dataset input or output is unusable (bad manifest, missing codec, not a dataset folder)."""


@dataclass(frozen=True)
class ClipSource:
    audio: Path
    text: str
    speaker: str


@dataclass
class ShardReport:
    samples: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


# --- reading the input -----------------------------------------------------------------------------------


def read_manifest(path: str | Path) -> list[ClipSource]:
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"manifest not found: {path}")
    root = path.parent
    rows: list[dict[str, Any]] = []
    if path.suffix == ".jsonl":
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DatasetError(f"{path}:{number}: not JSON ({exc.msg})") from None
    elif path.suffix in (".tsv", ".csv"):
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t" if path.suffix == ".tsv" else ","))
    else:
        raise DatasetError(f"{path}: a manifest must be .jsonl, .tsv or .csv")
    sources = []
    for number, row in enumerate(rows, 1):
        if not isinstance(row, dict) or "audio" not in row or "text" not in row:
            raise DatasetError(f"{path}: row {number} needs the fields 'audio' and 'text'")
        audio = Path(str(row["audio"]))
        speaker = str(row.get("speaker") or "default")
        sources.append(ClipSource(audio if audio.is_absolute() else root / audio, str(row["text"]), speaker))
    return sources


def scan_audio_dir(root: str | Path) -> list[ClipSource]:
    """Every audio file under root with a same-stem .txt transcript; the speaker is the parent folder's name."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"audio folder not found: {root}")
    sources = []
    for audio in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES):
        transcript = audio.with_suffix(".txt")
        text = transcript.read_text().strip() if transcript.is_file() else ""
        speaker = audio.parent.relative_to(root).as_posix().replace("/", "_") or "default"
        sources.append(ClipSource(audio, text, speaker))
    return sources


# --- the codec encoder -----------------------------------------------------------------------------------


class BatchedCodecEncoder:
    """The codec's encoder.onnx over several clips per call: padded to the longest, trimmed per clip after."""

    def __init__(self, codec_dir: str | Path) -> None:
        path = Path(codec_dir) / "encoder.onnx"
        if not path.is_file():
            raise DatasetError(f"codec encoder not found: {path} (pass the codec/ folder of a model directory)")
        self.graph = OnnxGraph(path)
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


# --- one clip ----------------------------------------------------------------------------------------------


def load_clip(path: Path, sample_rate_hz: int, cfg: DatasetConfig) -> np.ndarray:
    """Reads and checks one clip; raises ValueError with the reason it must be skipped."""
    if not path.is_file():
        raise ValueError("audio file not found")
    try:
        samples, source_rate_hz = sf.read(str(path), dtype="float32", always_2d=True)  # (n ch)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise ValueError(f"undecodable audio ({str(exc).splitlines()[-1][:120]})") from None
    if samples.size == 0:
        raise ValueError("audio has no samples")
    if not np.isfinite(samples).all():
        raise ValueError("audio holds NaN or infinite samples")
    mono = samples.mean(axis=1)
    duration_s = mono.shape[0] / source_rate_hz
    if duration_s < cfg.min_duration_s:
        raise ValueError(f"too short ({duration_s:.2f} s < {cfg.min_duration_s:g} s)")
    if duration_s > cfg.max_duration_s:
        raise ValueError(f"too long ({duration_s:.2f} s > {cfg.max_duration_s:g} s)")
    if float(np.abs(mono).max()) < cfg.silence_peak:
        raise ValueError("silent audio")
    if source_rate_hz != sample_rate_hz:
        mono = soxr.resample(mono, source_rate_hz, sample_rate_hz, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def phoneme_ids(text: str, cfg: DatasetConfig) -> np.ndarray:
    """Phoneme ids of a transcript; raises ValueError with the reason it must be skipped."""
    if not text.strip():
        raise ValueError("empty transcript")
    try:
        tokens = tokenize(text, max_tokens=cfg.max_phonemes)
    except InputError as exc:
        raise ValueError(f"transcript unusable: {exc.message}") from None
    return np.asarray(tokens.ids, dtype=np.int16)


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
    sources: Sequence[ClipSource],
    first_index: int,
    out_tar: Path,
    encoder: BatchedCodecEncoder,
    cfg: DatasetConfig,
    speaker_encoder: SpeakerEncoder | None,
    on_clip: Callable[[], None] | None = None,
) -> ShardReport:
    """Encodes one shard's clips and writes it (atomically, via a temporary file)."""
    report = ShardReport()
    ready: list[tuple[int, ClipSource, np.ndarray, np.ndarray]] = []
    for offset, source in enumerate(sources):
        try:
            ids = phoneme_ids(source.text, cfg)
            audio = load_clip(source.audio, encoder.codec.sample_rate_hz, cfg)
        except ValueError as exc:
            report.skipped.append({"audio": str(source.audio), "reason": str(exc)})
        else:
            ready.append((first_index + offset, source, audio, ids))
        if on_clip is not None:
            on_clip()
    # Sorted by length so each encoder batch pads little.
    ready.sort(key=lambda item: item[2].shape[0])
    encoded: dict[int, np.ndarray] = {}
    for start in range(0, len(ready), cfg.encode_batch_size):
        chunk = ready[start : start + cfg.encode_batch_size]
        for (index, *_), latents in zip(chunk, encoder.encode([item[2] for item in chunk]), strict=True):
            encoded[index] = latents
    ready.sort(key=lambda item: item[0])

    tmp = out_tar.with_suffix(".tar.tmp")
    with tarfile.open(tmp, "w") as tar:
        for index, source, audio, ids in ready:
            latents = encoded[index]
            if not np.isfinite(latents).all():
                report.skipped.append({"audio": str(source.audio), "reason": "codec produced NaN latents"})
                continue
            key = f"{index:09d}"
            meta = {
                "text": source.text,
                "speaker": source.speaker,
                "source": str(source.audio),
                "duration_s": round(audio.shape[0] / encoder.codec.sample_rate_hz, 4),
                "num_frames": int(latents.shape[0]),
                "num_phonemes": int(ids.shape[0]),
            }
            _add_member(tar, f"{key}.latents.npy", _npy_bytes(latents))
            _add_member(tar, f"{key}.phonemes.npy", _npy_bytes(ids))
            _add_member(tar, f"{key}.json", json.dumps(meta).encode())
            if speaker_encoder is not None:
                embedding = speaker_encoder.embed(audio, encoder.codec.sample_rate_hz)
                _add_member(tar, f"{key}.speaker_embedding.npy", _npy_bytes(embedding))
            report.samples.append(
                {
                    "key": key,
                    "speaker": source.speaker,
                    "num_frames": meta["num_frames"],
                    "num_phonemes": meta["num_phonemes"],
                }
            )
    os.replace(tmp, out_tar)
    return report


def build_dataset(
    sources: Sequence[ClipSource],
    out_dir: str | Path,
    cfg: DatasetConfig,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """Builds (or resumes building) the shards of `sources` in out_dir; returns the validation report."""
    out_dir = Path(out_dir)
    shard_dir = out_dir / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    if not sources:
        raise DatasetError("no input clips: the manifest or folder is empty")
    encoder = BatchedCodecEncoder(cfg.codec_dir)
    speaker_encoder = load_speaker_encoder(cfg.speaker_encoder) if cfg.speaker_encoder != "none" else None
    build_facts = {"config": config_to_dict(cfg), "num_inputs": len(sources)}
    facts_path = out_dir / "build.json"
    if facts_path.is_file():
        previous = json.loads(facts_path.read_text())
        if previous != build_facts:
            raise DatasetError(
                f"{out_dir} holds a build with other settings or input; use a new --out folder or delete it"
            )
    facts_path.write_text(json.dumps(build_facts, indent=2) + "\n")

    num_shards = -(-len(sources) // cfg.shard_size)
    bar = _progress_bar(len(sources), progress)
    reports: list[ShardReport] = []
    for shard in range(num_shards):
        first = shard * cfg.shard_size
        chunk = sources[first : first + cfg.shard_size]
        tar_path = shard_dir / f"{shard_name(shard)}.tar"
        report_path = shard_dir / f"{shard_name(shard)}.json"
        if tar_path.is_file() and report_path.is_file():  # finished by an earlier (interrupted) run
            saved = json.loads(report_path.read_text())
            reports.append(ShardReport(saved["samples"], saved["skipped"]))
            bar.update(len(chunk))
            continue
        report = build_shard(chunk, first, tar_path, encoder, cfg, speaker_encoder, on_clip=lambda: bar.update(1))
        report_path.write_text(json.dumps({"samples": report.samples, "skipped": report.skipped}, indent=1) + "\n")
        reports.append(report)
    bar.close()
    return _write_index(out_dir, encoder, cfg, reports, speaker_encoder)


def _progress_bar(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="clip", desc="dataset build", disable=not enabled)


def _write_index(
    out_dir: Path,
    encoder: BatchedCodecEncoder,
    cfg: DatasetConfig,
    reports: Sequence[ShardReport],
    speaker_encoder: SpeakerEncoder | None,
) -> dict[str, Any]:
    samples = [sample for report in reports for sample in report.samples]
    skipped = [item for report in reports for item in report.skipped]
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
    (out_dir / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    reasons = Counter(item["reason"].split(" (")[0] for item in skipped)
    report = {
        "num_inputs": len(samples) + len(skipped),
        "num_kept": len(samples),
        "num_skipped": len(skipped),
        "skipped_by_reason": dict(reasons.most_common()),
        "skipped": skipped,
        "num_speakers": len(speakers),
        "single_clip_speakers": sorted(name for name, count in speakers.items() if count < 2),
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def read_index(data_dir: str | Path) -> dict[str, Any]:
    path = Path(data_dir) / "index.json"
    if not path.is_file():
        raise DatasetError(f"{data_dir} is not a built dataset (no index.json); run `smalltts dataset build` first")
    index: dict[str, Any] = json.loads(path.read_text())
    if index.get("format") != INDEX_FORMAT:
        raise DatasetError(f"{path}: unknown dataset format {index.get('format')!r}")
    return index


def iter_sources(manifest: str | Path | None, audio_dir: str | Path | None) -> Iterable[ClipSource]:
    if (manifest is None) == (audio_dir is None):
        raise DatasetError("give exactly one of --manifest or --audio-dir")
    return read_manifest(manifest) if manifest is not None else scan_audio_dir(audio_dir)  # type: ignore[arg-type]
