"""Readers for the corpus layouts that `smalltts dataset build` takes: each turns one input into ClipSources.

    manifest     a .jsonl file of rows {"audio", "text", "speaker"?}, or .tsv/.csv with a header naming those
                 columns; relative audio paths are relative to the manifest
    audio-dir    a folder of audio files, each with a same-stem .txt transcript; speaker = the parent folder(s)
    libritts-r   LibriTTS-R (or LibriTTS): [SUBSET/]SPEAKER/CHAPTER/SPEAKER_CHAPTER_UTT_SEG.wav beside
                 SPEAKER_CHAPTER_UTT_SEG.normalized.txt (the .original.txt when that is missing); speaker = the
                 SPEAKER part of the name, which is also its folder
    emilia       Emilia-style webdataset tars (one .tar, or a folder searched for them): KEY.mp3 (or .wav, .flac,
                 .ogg, .opus) + KEY.json with "text" and "speaker" (and maybe "language", "duration"); a sample
                 whose "language" is not English is skipped, because the text front end is English only, and one
                 whose "duration" is out of range is skipped without decoding it
    hf           a folder written by Hugging Face `datasets` (`Dataset.save_to_disk`, or a DatasetDict's, then
                 pick the split): an audio column (the Audio feature's bytes/path, a {"array", "sampling_rate"}
                 struct, or a path string), a text column and maybe a speaker column

`read_corpus(path, kind)` picks the reader; kind "auto" looks at the path (`detect_corpus`) and names the
choices when it cannot tell. Every reader returns its clips in a fixed order (sorted paths, file order, row
order), so N machines reading the same input agree on what clip i is.

No audio is read here. A ClipSource says where its audio is (a file, a member of a tar by byte offset, a row of
a saved dataset) and `read_audio` reads it in whichever process decodes it. The tars are indexed with `tarfile`
rather than streamed with `webdataset`: listing the member headers gives each sample's byte range without
reading any audio, so the list can be split across machines and each worker reads only its own clips. The saved
dataset's audio is read as raw bytes and decoded with soundfile, not through `datasets`' Audio feature, which
needs torchcodec (and FFmpeg) to decode.

A reader that finds a clip it cannot use (no transcript file, no audio in a tar sample, another language) keeps
it with a `problem`, so the build's report lists it with that reason instead of it vanishing.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import soundfile as sf

from training.errors import TrainingBaseError

CorpusKind = Literal["manifest", "audio-dir", "libritts-r", "emilia", "hf"]
CORPUS_KINDS: tuple[CorpusKind, ...] = ("manifest", "audio-dir", "libritts-r", "emilia", "hf")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus", ".mp3")
MANIFEST_SUFFIXES = (".jsonl", ".tsv", ".csv")
COMPRESSED_TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar.zst", ".tar.xz", ".tar.bz2")
_GUNZIP_HINT = (
    "compressed tars cannot be read by byte range; decompress them first (gunzip keeps the webdataset layout: "
    ".tar.gz -> .tar)"
)

# Column names tried, in order, when a saved dataset's columns are not named on the command line.
AUDIO_COLUMNS = ("audio", "wav", "speech", "mp3", "flac")
TEXT_COLUMNS = ("text", "normalized_text", "text_normalized", "transcript", "transcription", "sentence")
SPEAKER_COLUMNS = ("speaker", "speaker_id", "spk_id", "client_id")

# webdataset's rule: the key is the member path up to the first dot of its file name, the rest is the field.
_WDS_KEY = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")


class DatasetError(TrainingBaseError, ValueError):
    """The dataset input or output is unusable (bad manifest, unknown layout, missing codec, not a dataset)."""


@dataclass(frozen=True)
class TarMember:
    """An audio member of an uncompressed tar, read by byte range without scanning the tar again."""

    name: str
    offset: int  # of the member's data, in bytes from the start of the tar
    size: int


@dataclass(frozen=True)
class DatasetRow:
    """One row of a saved Hugging Face dataset: `split` is "" for a Dataset, the split name for a DatasetDict."""

    split: str
    row: int
    column: str


@dataclass(frozen=True)
class ClipSource:
    audio: Path  # the audio file, or the tar / saved-dataset folder holding it (then `inside` says where)
    text: str
    speaker: str
    inside: TarMember | DatasetRow | None = None
    problem: str = ""  # set by a reader that already knows the clip is unusable: the build skips it with this
    duration_s: float | None = None  # as the corpus states it (Emilia's json): out of range skips the decode

    @property
    def name(self) -> str:
        """How reports and shard metadata name the clip: the file, or CONTAINER::member / CONTAINER::split[row]."""
        if isinstance(self.inside, TarMember):
            return f"{self.audio}::{self.inside.name}"
        if isinstance(self.inside, DatasetRow):
            return f"{self.audio}::{self.inside.split}[{self.inside.row}]"
        return str(self.audio)


# --- choosing the reader ----------------------------------------------------------------------------------


def detect_corpus(path: str | Path) -> CorpusKind:
    """The layout of `path`: a manifest file, a tar, a saved dataset, a LibriTTS-R tree or a folder of audio.

    A folder holding any .tar is read as Emilia-style tars, then one with any .normalized.txt as LibriTTS-R."""
    path = Path(path)
    if path.is_file():
        if path.suffix in MANIFEST_SUFFIXES:
            return "manifest"
        if path.suffix == ".tar":
            return "emilia"
        if path.name.endswith(COMPRESSED_TAR_SUFFIXES):
            raise DatasetError(f"{path}: {_GUNZIP_HINT}")
        raise DatasetError(f"{path}: cannot tell its layout (a manifest is .jsonl/.tsv/.csv, a webdataset shard .tar)")
    if not path.is_dir():
        raise DatasetError(f"input not found: {path}")
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return "hf"
    has_audio = has_normalized = has_compressed_tar = False
    for _, _, files in os.walk(path):
        for file in files:
            if file.endswith(".tar"):
                return "emilia"
            has_normalized = has_normalized or file.endswith(".normalized.txt")
            has_audio = has_audio or file.lower().endswith(AUDIO_SUFFIXES)
            has_compressed_tar = has_compressed_tar or file.endswith(COMPRESSED_TAR_SUFFIXES)
    if has_compressed_tar and not has_audio:
        raise DatasetError(f"{path}: {_GUNZIP_HINT}")
    if has_normalized:
        return "libritts-r"
    if has_audio:
        return "audio-dir"
    raise DatasetError(
        f"{path}: no audio, tars, LibriTTS-R transcripts or saved dataset found; pass --corpus "
        + "|".join(CORPUS_KINDS)
    )


def read_corpus(
    path: str | Path,
    kind: CorpusKind | Literal["auto"] = "auto",
    *,
    split: str | None = None,
    audio_column: str | None = None,
    text_column: str | None = None,
    speaker_column: str | None = None,
) -> list[ClipSource]:
    """The clips of one input, in a fixed order. The split and column names apply to saved datasets only."""
    if kind == "auto":
        kind = detect_corpus(path)
    if kind == "manifest":
        return read_manifest(path)
    if kind == "audio-dir":
        return scan_audio_dir(path)
    if kind == "libritts-r":
        return scan_libritts(path)
    if kind == "emilia":
        return scan_webdataset_tars(path)
    if kind == "hf":
        return read_saved_dataset(
            path, split=split, audio_column=audio_column, text_column=text_column, speaker_column=speaker_column
        )
    raise DatasetError(f"unknown corpus layout {kind!r}; choose one of {', '.join(CORPUS_KINDS)}")


# --- manifests and folders ----------------------------------------------------------------------------------


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


def _audio_files(root: Path, suffixes: Sequence[str] = AUDIO_SUFFIXES) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes and p.is_file())


def scan_audio_dir(root: str | Path) -> list[ClipSource]:
    """Every audio file under root with a same-stem .txt transcript; the speaker is the parent folder's name."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"audio folder not found: {root}")
    sources = []
    for audio in _audio_files(root):
        transcript = audio.with_suffix(".txt")
        text = transcript.read_text().strip() if transcript.is_file() else ""
        problem = "" if transcript.is_file() else f"no transcript ({transcript.name} is missing)"
        speaker = audio.parent.relative_to(root).as_posix().replace("/", "_") or "default"
        sources.append(ClipSource(audio, text, speaker, problem=problem))
    return sources


def scan_libritts(root: str | Path) -> list[ClipSource]:
    """A LibriTTS-R tree (the corpus root, one subset, or one speaker): every .wav with its normalized text."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"LibriTTS-R folder not found: {root}")
    sources = []
    for audio in _audio_files(root, (".wav",)):
        stem = audio.name[: -len(".wav")]
        problem = ""
        text = ""
        for variant in ("normalized", "original"):
            transcript = audio.with_name(f"{stem}.{variant}.txt")
            if transcript.is_file():
                text = transcript.read_text().strip()
                break
        else:
            problem = f"no transcript ({stem}.normalized.txt is missing)"
        # LibriTTS names every utterance SPEAKER_CHAPTER_UTT_SEG and keeps it in SPEAKER/CHAPTER/.
        speaker = stem.split("_")[0] if "_" in stem else audio.parent.parent.name
        sources.append(ClipSource(audio, text, speaker, problem=problem))
    return sources


# --- Emilia-style webdataset tars -------------------------------------------------------------------------------


def scan_webdataset_tars(path: str | Path) -> list[ClipSource]:
    """Every sample of one uncompressed .tar or of every .tar under a folder (sorted), in member order."""
    path = Path(path)
    if path.is_file():
        tars = [path]
    elif path.is_dir():
        tars = sorted(p for p in path.rglob("*.tar") if p.is_file())
        if not tars and any(p.name.endswith(COMPRESSED_TAR_SUFFIXES) for p in path.rglob("*")):
            raise DatasetError(f"{path}: {_GUNZIP_HINT}")
        if not tars:
            raise DatasetError(f"{path}: no .tar files found")
    else:
        raise DatasetError(f"input not found: {path}")
    sources: list[ClipSource] = []
    for tar_path in tars:
        sources.extend(_scan_tar(tar_path))
    return sources


def _scan_tar(tar_path: Path) -> list[ClipSource]:
    samples: dict[str, dict[str, tarfile.TarInfo]] = {}  # key -> field -> member, in the tar's order
    try:
        # "r:" refuses compressed tars: their members cannot be read by byte range.
        with tarfile.open(tar_path, "r:") as tar:
            for info in tar:
                match = _WDS_KEY.match(info.name)
                if info.isfile() and match is not None:
                    samples.setdefault(match.group(1), {})[match.group(2).lower()] = info
            texts = {key: _read_member(tar, fields["json"]) for key, fields in samples.items() if "json" in fields}
    except tarfile.ReadError as exc:
        raise DatasetError(f"{tar_path}: not an uncompressed tar ({exc}); {_GUNZIP_HINT}") from None
    sources = []
    for key, fields in samples.items():
        audio_field = next((f for f in fields if "." + f in AUDIO_SUFFIXES), None)
        if audio_field is None and "json" not in fields:
            continue  # neither audio nor a transcript: not a clip (a README or similar member)
        member = fields[audio_field] if audio_field is not None else None
        inside = TarMember(member.name, member.offset_data, member.size) if member else TarMember(key, -1, 0)
        problem = "" if member is not None else "sample has no audio member"
        meta = texts.get(key)
        text, speaker, duration_s = "", "default", None
        if meta is None:
            problem = problem or "sample has no .json"
        elif not isinstance(meta, dict):
            problem = problem or "sample .json is not a JSON object"
        else:
            text = str(meta.get("text") or "").strip()
            speaker = str(meta.get("speaker") or "default")
            duration = meta.get("duration")
            duration_s = float(duration) if isinstance(duration, int | float) and duration > 0 else None
            language = str(meta.get("language") or "en").lower()
            if not language.startswith("en"):
                problem = problem or f"language {language!r} (the text front end speaks English only)"
        sources.append(ClipSource(tar_path, text, speaker, inside=inside, problem=problem, duration_s=duration_s))
    return sources


def _read_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> Any:
    handle = tar.extractfile(info)
    if handle is None:
        return None
    try:
        return json.loads(handle.read())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ""  # present but unreadable: reported as not a JSON object


# --- saved Hugging Face datasets ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _open_saved_dataset(path: str, split: str) -> Any:
    """The saved Dataset (one split of a DatasetDict) in "arrow" format: rows come back undecoded."""
    try:
        import datasets
    except ImportError:
        raise DatasetError("reading a saved Hugging Face dataset needs `datasets`: pip install datasets") from None
    try:
        loaded = datasets.load_from_disk(path)
    except (FileNotFoundError, ValueError) as exc:
        raise DatasetError(f"{path}: not a saved Hugging Face dataset ({exc})") from None
    if isinstance(loaded, datasets.DatasetDict):
        if not split:
            names = sorted(loaded)
            if len(names) != 1:
                raise DatasetError(f"{path} holds the splits {', '.join(names)}; pass --split NAME")
            split = names[0]
        if split not in loaded:
            raise DatasetError(f"{path} has no split {split!r} (it has {', '.join(sorted(loaded))})")
        loaded = loaded[split]
    elif split:
        raise DatasetError(f"{path} is a single Dataset, not a DatasetDict: drop --split")
    return loaded.with_format("arrow")


def _pick_column(columns: Sequence[str], wanted: str | None, candidates: Sequence[str], what: str) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            raise DatasetError(f"no {what} column {wanted!r} (the columns are {', '.join(columns)})")
        return wanted
    return next((name for name in candidates if name in columns), None)


def read_saved_dataset(
    path: str | Path,
    *,
    split: str | None = None,
    audio_column: str | None = None,
    text_column: str | None = None,
    speaker_column: str | None = None,
) -> list[ClipSource]:
    """One row per clip; the text and speaker columns are read now, the audio only when the clip is decoded."""
    path = Path(path).resolve()
    if not path.is_dir():
        raise DatasetError(f"saved dataset folder not found: {path}")
    table = _open_saved_dataset(str(path), split or "")
    chosen_split = split or _split_name(path)
    columns = list(table.column_names)
    features = table.features
    audio_candidates = [name for name in columns if type(features[name]).__name__ == "Audio"] + list(AUDIO_COLUMNS)
    audio = _pick_column(columns, audio_column, audio_candidates, "audio")
    text = _pick_column(columns, text_column, TEXT_COLUMNS, "text")
    if audio is None or text is None:
        raise DatasetError(
            f"{path}: cannot tell the audio and text columns among {', '.join(columns)}; "
            "pass --audio-column and --text-column"
        )
    speaker = _pick_column(columns, speaker_column, SPEAKER_COLUMNS, "speaker")
    texts = table.select_columns([text])[:].column(0).to_pylist()
    speakers = table.select_columns([speaker])[:].column(0).to_pylist() if speaker else ["default"] * len(texts)
    return [
        ClipSource(
            path, str(t or "").strip(), str(s) if s not in (None, "") else "default", DatasetRow(chosen_split, i, audio)
        )
        for i, (t, s) in enumerate(zip(texts, speakers, strict=True))
    ]


def _split_name(path: Path) -> str:
    """The split a DatasetDict folder resolves to without --split (its only one), "" for a plain Dataset."""
    dict_file = path / "dataset_dict.json"
    if not dict_file.is_file():
        return ""
    splits: list[str] = json.loads(dict_file.read_text()).get("splits", [])
    return sorted(splits)[0] if len(splits) == 1 else ""


# --- reading one clip's audio (in whichever process decodes it) -------------------------------------------------


def read_audio(source: ClipSource) -> tuple[np.ndarray, int]:
    """(n ch) float32 samples and their rate; raises ValueError with the reason the clip must be skipped."""
    inside = source.inside
    if isinstance(inside, DatasetRow):
        return _read_dataset_audio(source.audio, inside)
    if isinstance(inside, TarMember):
        try:
            with source.audio.open("rb") as handle:
                handle.seek(inside.offset)
                data = handle.read(inside.size)
        except OSError as exc:
            raise ValueError(f"tar unreadable ({exc.strerror})") from None
        if len(data) != inside.size:
            raise ValueError("tar member truncated")
        return _decode(io.BytesIO(data))
    if not source.audio.is_file():
        raise ValueError("audio file not found")
    return _decode(str(source.audio))


def _decode(file: str | io.BytesIO) -> tuple[np.ndarray, int]:
    try:
        samples, rate = sf.read(file, dtype="float32", always_2d=True)  # (n ch)
    except (sf.SoundFileError, RuntimeError) as exc:
        raise ValueError(f"undecodable audio ({str(exc).splitlines()[-1][:120]})") from None
    return samples, int(rate)


def _read_dataset_audio(folder: Path, where: DatasetRow) -> tuple[np.ndarray, int]:
    table = _open_saved_dataset(str(folder), where.split if (folder / "dataset_dict.json").is_file() else "")
    value = table[where.row : where.row + 1].column(where.column)[0].as_py()
    if isinstance(value, str):  # a path column
        value = {"path": value}
    if not isinstance(value, dict):
        raise ValueError(f"audio column holds {type(value).__name__}, not audio")
    if value.get("array") is not None:  # decoded samples, saved as a plain struct
        if not value.get("sampling_rate"):
            raise ValueError("audio array without a sampling_rate")
        samples = np.asarray(value["array"], dtype=np.float32)
        return (samples[:, None] if samples.ndim == 1 else samples.T), int(value["sampling_rate"])
    if value.get("bytes"):
        return _decode(io.BytesIO(value["bytes"]))
    if value.get("path"):
        audio = Path(value["path"])
        audio = audio if audio.is_absolute() else folder / audio
        if not audio.is_file():
            raise ValueError("audio file not found")
        return _decode(str(audio))
    raise ValueError("audio column row is empty")
