"""The training fixtures, a pytest plugin registered by tests/conftest.py: a small real espeak-ng corpus, shards
built with the tiny model's codec, and short runs of every trainer, made once per session and shared by
tests/training and the training commands' tests (each is seconds on a CPU). torch is imported inside them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest


def resemblyzer_usable() -> tuple[bool, str]:
    from training.speaker_encoder import ResemblyzerEncoder, SpeakerEncoderError

    try:
        ResemblyzerEncoder()
    except SpeakerEncoderError as exc:
        return False, str(exc)
    return True, ""


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 espeak-ng speakers x 3 clips (+1 held-out each), plus a corrupt and an empty-transcript entry."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from training.config import SynthCorpusConfig
    from training.corpus import synthesize_corpus

    out = tmp_path_factory.mktemp("corpus")
    cfg = SynthCorpusConfig(num_speakers=3, clips_per_speaker=3, seed=0, min_words=3, max_words=8)
    manifest, _ = synthesize_corpus(out, cfg, heldout_clips_per_speaker=1)
    (out / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEnot really audio")
    first = json.loads(manifest.read_text().splitlines()[0])
    extra = [
        {"audio": "corrupt.wav", "text": "This file is broken.", "speaker": "spk_broken"},
        {"audio": first["audio"], "text": "   ", "speaker": "spk_silent_text"},
    ]
    with manifest.open("a") as handle:
        handle.write("".join(json.dumps(row) + "\n" for row in extra))
    return out


@pytest.fixture(scope="session")
def speaker_encoder_name() -> str:
    usable, _ = resemblyzer_usable()
    return "resemblyzer" if usable else "none"


@pytest.fixture(scope="session")
def dataset_dir(
    tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path, tiny_model_dir: Path, speaker_encoder_name: str
) -> Path:
    from training.config import DatasetConfig
    from training.dataset import build_dataset, read_manifest

    out = tmp_path_factory.mktemp("dataset")
    cfg = DatasetConfig(
        codec_dir=str(tiny_model_dir / "codec"), shard_size=4, encode_batch_size=3, speaker_encoder=speaker_encoder_name
    )
    build_dataset(read_manifest(corpus_dir / "manifest.jsonl"), out, cfg, progress=False)
    return out


@pytest.fixture(scope="session")
def heldout_dir(
    tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path, tiny_model_dir: Path, speaker_encoder_name: str
) -> Path:
    from training.config import DatasetConfig
    from training.dataset import build_dataset, read_manifest

    out = tmp_path_factory.mktemp("heldout")
    cfg = DatasetConfig(codec_dir=str(tiny_model_dir / "codec"), speaker_encoder=speaker_encoder_name)
    build_dataset(read_manifest(corpus_dir / "heldout.jsonl"), out, cfg, progress=False)
    return out


@pytest.fixture(scope="session")
def teacher_run(tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path) -> Path:
    import torch

    from training.config import teacher_config_for
    from training.teacher import train_teacher

    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("teacher_run")
    cfg = teacher_config_for("tiny", steps=6, log_every=1, checkpoint_every=3, lr=1e-3, warmup_steps=2)
    train_teacher(cfg, dataset_dir, run, cpu=True)
    return run


@pytest.fixture(scope="session")
def asr_run(tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path) -> Path:
    import torch

    from training.asr import train_asr
    from training.config import asr_config_for

    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("asr_run")
    train_asr(asr_config_for("tiny", steps=4, log_every=2, checkpoint_every=0), dataset_dir, run, cpu=True)
    return run


@pytest.fixture(scope="session")
def sv_run(tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path, speaker_encoder_name: str) -> Path:
    if speaker_encoder_name == "none":
        pytest.skip(f"resemblyzer is not usable, so the dataset has no SV targets: {resemblyzer_usable()[1]}")
    import torch

    from training.config import sv_config_for
    from training.sv import train_sv

    torch.set_num_threads(1)
    run = tmp_path_factory.mktemp("sv_run")
    train_sv(sv_config_for("tiny", steps=4, log_every=2, checkpoint_every=0), dataset_dir, run, cpu=True)
    return run
