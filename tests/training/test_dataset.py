from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from training.config import DatasetConfig
from training.dataset import DatasetError, build_dataset, read_index, read_manifest
from training.loader import ClipDataset, iter_shard_samples


def test_build_skips_the_corrupt_clip_and_the_empty_transcript_with_reasons(dataset_dir: Path) -> None:
    report = json.loads((dataset_dir / "report.json").read_text())
    assert report["num_kept"] == 9
    reasons = {Path(item["audio"]).name: item["reason"] for item in report["skipped"]}
    assert reasons["corrupt.wav"].startswith("undecodable audio")
    assert "empty transcript" in reasons.values()
    assert report["num_skipped"] == 2


def test_shards_load_with_webdataset(dataset_dir: Path) -> None:
    import webdataset as wds

    index = read_index(dataset_dir)
    urls = [str(dataset_dir / shard) for shard in index["shards"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # webdataset leaves its tar handles to the GC
        samples = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False))
    assert len(samples) == index["num_samples"] == 9
    sample = samples[0]
    latents = np.load(io.BytesIO(sample["latents.npy"]))
    phonemes = np.load(io.BytesIO(sample["phonemes.npy"]))
    meta = json.loads(sample["json"])
    assert latents.shape == (meta["num_frames"], 64) and latents.dtype == np.float32
    assert phonemes.shape == (meta["num_phonemes"],) and phonemes.min() >= 1 and phonemes.max() < 198


def test_latents_match_the_codec_encoder_frame_count(dataset_dir: Path) -> None:
    dataset = ClipDataset.load(dataset_dir)
    for shard in read_index(dataset_dir)["shards"]:
        for sample in iter_shard_samples(dataset_dir / shard):
            meta = json.loads(sample["json"])
            # ceil(duration * 7.5) frames: one latent per 3200-sample hop of 24 kHz audio
            assert meta["num_frames"] == int(np.ceil(meta["duration_s"] * 24_000 / 3_200 - 1e-6))
    assert len(dataset) == 9 and dataset.latent_dim == 64


def test_an_interrupted_build_resumes_and_gives_identical_shards(
    tmp_path: Path, corpus_dir: Path, tiny_model_dir: Path, dataset_dir: Path
) -> None:
    cfg = DatasetConfig(codec_dir=str(tiny_model_dir / "codec"), shard_size=4, encode_batch_size=3)
    sources = read_manifest(corpus_dir / "manifest.jsonl")
    build_dataset(sources, tmp_path, cfg, progress=False)
    first = (tmp_path / "shards" / "shard-000001.tar").read_bytes()
    # Simulate a crash while shard 1 was being written: its files are gone, shard 0 stays.
    (tmp_path / "shards" / "shard-000001.tar").unlink()
    (tmp_path / "shards" / "shard-000001.json").unlink()
    stamp = (tmp_path / "shards" / "shard-000000.tar").stat().st_mtime_ns
    report = build_dataset(sources, tmp_path, cfg, progress=False)
    assert (tmp_path / "shards" / "shard-000001.tar").read_bytes() == first
    assert (tmp_path / "shards" / "shard-000000.tar").stat().st_mtime_ns == stamp  # not rebuilt
    assert report["num_kept"] == 9


def test_a_build_with_other_settings_refuses_the_same_folder(
    tmp_path: Path, corpus_dir: Path, tiny_model_dir: Path
) -> None:
    sources = read_manifest(corpus_dir / "manifest.jsonl")[:2]
    build_dataset(sources, tmp_path, DatasetConfig(codec_dir=str(tiny_model_dir / "codec")), progress=False)
    with pytest.raises(DatasetError, match="other settings"):
        build_dataset(
            sources, tmp_path, DatasetConfig(codec_dir=str(tiny_model_dir / "codec"), shard_size=1), progress=False
        )


def test_manifest_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "m.jsonl"
    bad.write_text('{"audio": "a.wav"}\n')
    with pytest.raises(DatasetError, match="'audio' and 'text'"):
        read_manifest(bad)
    with pytest.raises(DatasetError, match="not found"):
        read_manifest(tmp_path / "missing.jsonl")
    tsv = tmp_path / "m.tsv"
    tsv.write_text("audio\ttext\tspeaker\nclips/a.wav\thello there\tbob\n")
    (source,) = read_manifest(tsv)
    assert source.audio == tmp_path / "clips" / "a.wav" and source.speaker == "bob"


def test_too_short_clips_are_skipped(tmp_path: Path, corpus_dir: Path, tiny_model_dir: Path) -> None:
    sources = read_manifest(corpus_dir / "manifest.jsonl")[:2]
    cfg = DatasetConfig(codec_dir=str(tiny_model_dir / "codec"), min_duration_s=15.0, max_duration_s=20.0)
    report = build_dataset(sources, tmp_path, cfg, progress=False)
    assert report["num_kept"] == 0 and all("too short" in item["reason"] for item in report["skipped"])


def _shard_bytes(data_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted((data_dir / "shards").glob("shard-*"))}


def test_two_worker_processes_build_the_same_shards_as_one(
    tmp_path: Path, corpus_dir: Path, tiny_model_dir: Path, dataset_dir: Path, speaker_encoder_name: str
) -> None:
    # dataset_dir is the same input and settings built in this process (workers=1).
    cfg = DatasetConfig(
        codec_dir=str(tiny_model_dir / "codec"), shard_size=4, encode_batch_size=3, speaker_encoder=speaker_encoder_name
    )
    report = build_dataset(read_manifest(corpus_dir / "manifest.jsonl"), tmp_path, cfg, progress=False, workers=2)
    assert report["num_kept"] == 9 and report["num_skipped"] == 2
    assert _shard_bytes(tmp_path) == _shard_bytes(dataset_dir)
    assert (tmp_path / "index.json").read_text() == (dataset_dir / "index.json").read_text()


def test_n_parts_into_one_folder_cover_every_shard_once(
    tmp_path: Path, corpus_dir: Path, tiny_model_dir: Path, dataset_dir: Path, speaker_encoder_name: str
) -> None:
    cfg = DatasetConfig(
        codec_dir=str(tiny_model_dir / "codec"), shard_size=4, encode_batch_size=3, speaker_encoder=speaker_encoder_name
    )
    sources = read_manifest(corpus_dir / "manifest.jsonl")  # 11 clips: shards 0, 1, 2
    first = build_dataset(sources, tmp_path, cfg, progress=False, num_parts=2, part_index=0)
    assert sorted(_shard_bytes(tmp_path)) == [f"shard-00000{i}.{ext}" for i in (0, 2) for ext in ("json", "tar")]
    assert first["complete"] is False and first["num_shards_missing"] == 1 and first["num_inputs"] == 7
    assert not (tmp_path / "index.json").exists()
    last = build_dataset(sources, tmp_path, cfg, progress=False, num_parts=2, part_index=1)
    assert last["complete"] is True and last["num_kept"] == 9 and last["num_skipped"] == 2
    assert _shard_bytes(tmp_path) == _shard_bytes(dataset_dir)
    assert (tmp_path / "index.json").read_text() == (dataset_dir / "index.json").read_text()
    with pytest.raises(DatasetError, match="part_index"):
        build_dataset(sources, tmp_path, cfg, progress=False, num_parts=2, part_index=2)


def test_batched_speaker_embeddings_match_one_at_a_time(corpus_dir: Path, speaker_encoder_name: str) -> None:
    if speaker_encoder_name == "none":
        pytest.skip("resemblyzer is not usable here")
    import soundfile as sf

    from training.speaker_encoder import ResemblyzerEncoder

    encoder = ResemblyzerEncoder()
    clips = []
    for source in read_manifest(corpus_dir / "manifest.jsonl")[:3]:
        audio, rate = sf.read(str(source.audio), dtype="float32")
        clips.append(audio)
    batch = encoder.embed_batch(clips, rate)
    assert batch.shape == (3, 256)
    for row, clip in enumerate(clips):
        assert np.allclose(batch[row], encoder.embed(clip, rate), atol=1e-5)
