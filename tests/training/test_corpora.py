"""Each corpus layout `smalltts dataset build` reads, as a small fixture in that exact layout made from the
espeak-ng corpus's 9 clips (3 speakers x 3), built into shards with the tiny model's codec."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from training.config import DatasetConfig
from training.corpora import (
    ClipSource,
    DatasetError,
    DatasetRow,
    TarMember,
    detect_corpus,
    read_audio,
    read_corpus,
    read_manifest,
    read_saved_dataset,
    scan_audio_dir,
    scan_libritts,
    scan_webdataset_tars,
)
from training.dataset import build_dataset, prepare_clip


@pytest.fixture(scope="module")
def clips(corpus_dir: Path) -> list[ClipSource]:
    """The corpus's 9 real clips (its manifest ends with a corrupt one and an empty transcript)."""
    sources = [source for source in read_manifest(corpus_dir / "manifest.jsonl") if source.speaker.startswith("spk")]
    sources = [source for source in sources if source.text.strip() and source.audio.name != "corrupt.wav"]
    assert len(sources) == 9 and len({source.speaker for source in sources}) == 3
    return sources


def _speaker_numbers(clips: list[ClipSource]) -> dict[str, str]:
    return {name: str(19 + 7 * i) for i, name in enumerate(sorted({clip.speaker for clip in clips}))}


@pytest.fixture(scope="module")
def libritts_dir(tmp_path_factory: pytest.TempPathFactory, clips: list[ClipSource]) -> Path:
    """LibriTTS_R/train-clean-100/SPEAKER/CHAPTER/SPEAKER_CHAPTER_UTT_SEG.{wav,normalized.txt,original.txt}, plus
    the per-chapter .book.tsv and .trans.tsv, as the corpus ships them."""
    root = tmp_path_factory.mktemp("libritts") / "LibriTTS_R"
    numbers = _speaker_numbers(clips)
    for i, clip in enumerate(clips):
        speaker, chapter = numbers[clip.speaker], "198"
        stem = f"{speaker}_{chapter}_{i:06d}_000000"
        folder = root / "train-clean-100" / speaker / chapter
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{stem}.wav").write_bytes(clip.audio.read_bytes())
        (folder / f"{stem}.normalized.txt").write_text(clip.text)
        # The original text is unnormalized (here: shouted and with a digit) and must not be the one read.
        (folder / f"{stem}.original.txt").write_text(clip.text.upper() + " 42")
        with (folder / f"{speaker}_{chapter}.trans.tsv").open("a") as handle:
            handle.write(f"{stem}\t{clip.text.upper()} 42\t{clip.text}\n")
        (folder / f"{speaker}_{chapter}.book.tsv").write_text(f"{stem}\t{clip.text}\n")
    (root / "SPEAKERS.txt").write_text(";ID |SEX| SUBSET |MINUTES| NAME\n")
    return root


def _mp3_bytes(path: Path) -> bytes:
    samples, rate = sf.read(str(path), dtype="float32")
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format="MP3")
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_emilia_tars(
    root: Path, clips: list[ClipSource], extra: Sequence[tuple[str, dict[str, Any] | None]] = ()
) -> Path:
    """Emilia/EN/EN-B00000{0,1}.tar: per sample KEY.mp3 + KEY.json as Emilia ships them; `extra` samples (key,
    json or None) go into the last tar without audio, for the error cases."""
    folder = root / "Emilia" / "EN"
    folder.mkdir(parents=True)
    halves = [clips[:5], clips[5:]]
    numbers = {name: f"EN_B00000_S{i:05d}" for i, name in enumerate(sorted({clip.speaker for clip in clips}))}
    for number, half in enumerate(halves):
        with tarfile.open(folder / f"EN-B{number:06d}.tar", "w") as tar:
            for i, clip in enumerate(half):
                speaker = numbers[clip.speaker]
                key = f"{speaker}_W{number * 5 + i:06d}"
                meta = {
                    "id": key,
                    "wav": f"EN_B00000/{speaker}/mp3/{key}.mp3",
                    "text": f" {clip.text}",
                    "duration": round(sf.info(str(clip.audio)).duration, 3),
                    "speaker": speaker,
                    "language": "en",
                    "dnsmos": 3.3,
                }
                _add(tar, f"{key}.mp3", _mp3_bytes(clip.audio))
                _add(tar, f"{key}.json", json.dumps(meta).encode())
            if number == len(halves) - 1:
                for key, meta in extra:
                    if meta is not None:
                        _add(tar, f"{key}.json", json.dumps(meta).encode())
    return folder.parent


@pytest.fixture(scope="module")
def emilia_dir(tmp_path_factory: pytest.TempPathFactory, clips: list[ClipSource]) -> Path:
    return write_emilia_tars(tmp_path_factory.mktemp("emilia"), clips)


def _hf_columns(clips: list[ClipSource]) -> dict[str, list[Any]]:
    return {
        "audio": [{"bytes": clip.audio.read_bytes(), "path": clip.audio.name} for clip in clips],
        "text": [clip.text for clip in clips],
        "speaker_id": [clip.speaker for clip in clips],
    }


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory, clips: list[ClipSource]) -> Path:
    """A `datasets.Dataset` with an Audio column (encoded bytes, as `datasets` stores audio), saved to disk."""
    datasets = pytest.importorskip("datasets")
    out = tmp_path_factory.mktemp("hf") / "saved"
    dataset = datasets.Dataset.from_dict(_hf_columns(clips)).cast_column("audio", datasets.Audio())
    dataset.save_to_disk(str(out))
    return out


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory, clips: list[ClipSource]) -> Path:
    """SPEAKER/NAME.wav beside SPEAKER/NAME.txt."""
    root = tmp_path_factory.mktemp("audio_dir")
    for clip in clips:
        (root / clip.speaker).mkdir(exist_ok=True)
        (root / clip.speaker / clip.audio.name).write_bytes(clip.audio.read_bytes())
        (root / clip.speaker / clip.audio.name).with_suffix(".txt").write_text(clip.text + "\n")
    return root


@pytest.fixture(scope="module")
def manifest_file(tmp_path_factory: pytest.TempPathFactory, clips: list[ClipSource]) -> Path:
    """A .tsv manifest with a header, absolute audio paths."""
    path = tmp_path_factory.mktemp("manifest") / "clips.tsv"
    rows = [f"{clip.audio}\t{clip.text}\t{clip.speaker}\n" for clip in clips]
    path.write_text("audio\ttext\tspeaker\n" + "".join(rows))
    return path


LAYOUTS = {
    "libritts-r": "libritts_dir",
    "emilia": "emilia_dir",
    "hf": "hf_dir",
    "audio-dir": "audio_dir",
    "manifest": "manifest_file",
}


@pytest.mark.parametrize("kind", sorted(LAYOUTS))
def test_each_layout_builds_every_clip_without_skips(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, tiny_model_dir: Path, clips: list[ClipSource]
) -> None:
    path: Path = request.getfixturevalue(LAYOUTS[kind])
    assert detect_corpus(path) == kind
    sources = read_corpus(path)
    assert [source.text.strip() for source in sources] == [clip.text for clip in clips]
    cfg = DatasetConfig(codec_dir=str(tiny_model_dir / "codec"), shard_size=4, encode_batch_size=3)
    report = build_dataset(sources, tmp_path, cfg, progress=False)
    assert report["num_inputs"] == report["num_kept"] == 9 and report["num_skipped"] == 0, report["skipped"]
    assert report["num_speakers"] == 3 and report["complete"]
    index = json.loads((tmp_path / "index.json").read_text())
    assert len(index["shards"]) == 3 and sorted(index["speakers"].values()) == [3, 3, 3]


def test_libritts_reads_the_normalized_transcript_and_the_speaker_from_the_path(
    libritts_dir: Path, clips: list[ClipSource]
) -> None:
    sources = scan_libritts(libritts_dir / "train-clean-100")
    assert [source.text for source in sources] == [clip.text for clip in clips]
    numbers = _speaker_numbers(clips)
    assert [source.speaker for source in sources] == [numbers[clip.speaker] for clip in clips]
    assert all(source.speaker == source.audio.parent.parent.name for source in sources)
    # The old reading, a same-stem .txt beside the .wav, finds no transcripts in this layout.
    old = scan_audio_dir(libritts_dir)
    assert len(old) == 9 and all(source.problem.startswith("no transcript (19_198_") for source in old[:3])


def test_a_libritts_clip_without_a_transcript_is_reported_not_dropped(tmp_path: Path, clips: list[ClipSource]) -> None:
    folder = tmp_path / "19" / "198"
    folder.mkdir(parents=True)
    (folder / "19_198_000000_000000.wav").write_bytes(clips[0].audio.read_bytes())
    (source,) = scan_libritts(tmp_path)
    assert source.problem.startswith("no transcript") and source.speaker == "19"
    assert prepare_clip(0, source, 24_000, DatasetConfig()).skip_reason == source.problem


def test_emilia_samples_point_into_their_tar_and_decode_the_mp3(emilia_dir: Path, clips: list[ClipSource]) -> None:
    sources = scan_webdataset_tars(emilia_dir)
    assert [source.audio.name for source in sources] == ["EN-B000000.tar"] * 5 + ["EN-B000001.tar"] * 4
    assert sources[0].speaker == "EN_B00000_S00000" and isinstance(sources[0].inside, TarMember)
    assert sources[0].name.endswith("EN-B000000.tar::EN_B00000_S00000_W000000.mp3")
    samples, rate = read_audio(sources[0])
    original, original_rate = sf.read(str(clips[0].audio), dtype="float32")
    # mp3 adds the encoder's delay and padding, a few ms
    assert rate == original_rate and abs(samples.shape[0] - original.shape[0]) < 0.1 * rate
    assert scan_webdataset_tars(emilia_dir / "EN" / "EN-B000001.tar") == sources[5:]


def test_emilia_samples_it_cannot_use_are_skipped_with_reasons(
    tmp_path: Path, tiny_model_dir: Path, clips: list[ClipSource]
) -> None:
    extra = [("EN_B00000_S00009_W000100", {"text": "no audio here", "speaker": "x"})]
    root = write_emilia_tars(tmp_path / "in", clips[:2], extra)
    with tarfile.open(root / "EN" / "EN-B000001.tar", "a") as tar:  # a Chinese sample, with audio
        _add(tar, "ZH_B00000_S00000_W000000.mp3", _mp3_bytes(clips[0].audio))
        meta = {"text": "你好", "speaker": "ZH_B00000_S00000", "language": "zh"}
        _add(tar, "ZH_B00000_S00000_W000000.json", json.dumps(meta).encode())
        # Its json says 31 s: skipped as too long without being decoded (its bytes are not even audio).
        _add(tar, "EN_B00000_S00009_W000101.mp3", b"not audio")
        meta = {"text": "A long one.", "speaker": "EN_B00000_S00009", "language": "en", "duration": 31.0}
        _add(tar, "EN_B00000_S00009_W000101.json", json.dumps(meta).encode())
        _add(tar, "EN_B00000_S00009_W000102.mp3", _mp3_bytes(clips[0].audio))
        _add(tar, "EN_B00000_S00009_W000102.json", b"{not json")
    cfg = DatasetConfig(codec_dir=str(tiny_model_dir / "codec"))
    report = build_dataset(read_corpus(root), tmp_path / "out", cfg, progress=False)
    assert report["num_kept"] == 2
    reasons = sorted(item["reason"] for item in report["skipped"])
    assert reasons[0].startswith("language 'zh'") and reasons[1:3] == ["sample .json is not a JSON object",
                                                                       "sample has no audio member"]  # fmt: skip
    assert reasons[3] == "too long (31.00 s > 20 s)"


def test_compressed_tars_are_refused_with_the_fix(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "a.tar", "w:gz") as tar:  # misnamed: gzip inside
        _add(tar, "k.json", b"{}")
    with pytest.raises(DatasetError, match="not an uncompressed tar.*gunzip"):
        scan_webdataset_tars(tmp_path)
    (tmp_path / "a.tar").rename(tmp_path / "a.tar.gz")
    for read in (detect_corpus, scan_webdataset_tars):
        with pytest.raises(DatasetError, match="decompress them first"):
            read(tmp_path)


def test_saved_datasets_decode_bytes_arrays_and_paths(tmp_path: Path, clips: list[ClipSource]) -> None:
    datasets = pytest.importorskip("datasets")
    samples, rate = sf.read(str(clips[0].audio), dtype="float32")
    columns = {
        # decoded samples saved as a plain struct, and a path column (relative to the saved folder)
        "speech": [{"array": samples.tolist(), "sampling_rate": rate}],
        "file": [str(clips[0].audio)],
        "transcription": [clips[0].text],
    }
    datasets.Dataset.from_dict(columns).save_to_disk(str(tmp_path / "arrays"))
    (source,) = read_saved_dataset(tmp_path / "arrays")
    assert source.inside == DatasetRow("", 0, "speech") and source.speaker == "default"
    decoded, decoded_rate = read_audio(source)
    assert decoded_rate == rate and np.allclose(decoded[:, 0], samples)
    (by_path,) = read_saved_dataset(tmp_path / "arrays", audio_column="file")
    assert np.allclose(read_audio(by_path)[0][:, 0], samples)


def test_a_saved_dataset_dict_needs_its_split_named(tmp_path: Path, clips: list[ClipSource]) -> None:
    datasets = pytest.importorskip("datasets")
    splits = {
        "train": datasets.Dataset.from_dict(_hf_columns(clips[:3])),
        "test": datasets.Dataset.from_dict(_hf_columns(clips[3:4])),
    }
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "dict"))
    assert detect_corpus(tmp_path / "dict") == "hf"
    with pytest.raises(DatasetError, match="pass --split"):
        read_saved_dataset(tmp_path / "dict")
    test = read_saved_dataset(tmp_path / "dict", split="test")
    assert len(test) == 1 and test[0].speaker == clips[3].speaker
    assert read_audio(test[0])[0].shape[0] == sf.info(str(clips[3].audio)).frames
    with pytest.raises(DatasetError, match="no text column 'words'"):
        read_saved_dataset(tmp_path / "dict", split="train", text_column="words")


def test_the_old_layouts_are_detected_too(corpus_dir: Path, tmp_path: Path) -> None:
    assert detect_corpus(corpus_dir / "manifest.jsonl") == "manifest"
    assert detect_corpus(corpus_dir / "wavs") == "audio-dir"
    with pytest.raises(DatasetError, match="--corpus manifest"):
        detect_corpus(tmp_path)
    with pytest.raises(DatasetError, match="not found"):
        detect_corpus(tmp_path / "missing")
