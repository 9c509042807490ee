from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from model.config import read_sidecar
from training.codec_eval import evaluate_codec
from training.demo_corpus import split_corpus
from training.loop import TrainingError
from training.vocoder import (
    CODEC_WEIGHTS,
    export_from_checkpoint,
    load_trained_codec,
    pick_clips,
    train_vocoder,
    vocoder_config,
)

TINY = vocoder_config(
    steps=3,
    batch_size=2,
    segment_s=0.4,
    max_clips=4,
    stats_clips=2,
    checkpoint_every=1,
    log_every=1,
    warmup_steps=1,
    keep_checkpoints=3,
)


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 espeak-ng voices x 2 clips (+1 held-out each)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    from training.config import SynthCorpusConfig
    from training.corpus import synthesize_corpus

    out = tmp_path_factory.mktemp("voc_corpus")
    cfg = SynthCorpusConfig(num_speakers=3, clips_per_speaker=2, seed=0, min_words=3, max_words=6)
    synthesize_corpus(out, cfg, heldout_clips_per_speaker=1)
    return out


def test_split_moves_the_last_voices_out_of_training(small_corpus: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(small_corpus, corpus)
    sizes = split_corpus(corpus, heldout_voices=1)
    assert sizes == {
        "train": 4,
        "train_voices": 2,
        "heldout_voices": 1,
        "heldout_sentences": 2,
        "heldout_voice_clips": 3,
    }
    rows = {name: [json.loads(line) for line in (corpus / f"{name}.jsonl").read_text().splitlines()]
            for name in ("train", "heldout_sentences", "heldout_voices")}  # fmt: skip
    unseen = {row["speaker"] for row in rows["heldout_voices"]}
    assert len(unseen) == 1 and not unseen & {row["speaker"] for row in rows["train"] + rows["heldout_sentences"]}
    with pytest.raises(ValueError, match="heldout-voices"):
        split_corpus(corpus, heldout_voices=3)


def test_pick_clips_round_robins_over_speakers() -> None:
    from training.vocoder import ManifestClip

    clips = [ManifestClip(Path(f"{s}{i}.wav"), s) for s in "ab" for i in range(5)] + [ManifestClip(Path("c.wav"), "c")]
    picked = pick_clips(clips, 3, seed=0)
    assert sorted(clip.speaker for clip in picked) == ["a", "b", "c"]
    assert pick_clips(clips, 3, seed=0) == picked


def test_train_exports_a_mel_codec_and_resumes_exactly(small_corpus: Path, tmp_path: Path) -> None:
    manifest = small_corpus / "manifest.jsonl"
    straight = train_vocoder(TINY, manifest, tmp_path / "straight")
    assert straight.final_step == 3
    assert all(math.isfinite(value) for value in straight.last_metrics.values())
    codec_dir = tmp_path / "straight" / "codec"
    for graph in ("encoder", "decoder"):
        sidecar = read_sidecar(codec_dir / f"{graph}.onnx")
        assert sidecar is not None and sidecar["trained"] is True
        assert sidecar["model"]["codec"]["kind"] == "mel" and sidecar["model"]["codec"]["hidden_dim"] == 192

    # Interrupted after step 2 (its checkpoint is the latest), then resumed: the uninterrupted run's weights.
    resumed_dir = tmp_path / "resumed"
    shutil.copytree(tmp_path / "straight", resumed_dir)
    shutil.rmtree(resumed_dir / "checkpoints" / "step_0000003")
    (resumed_dir / "checkpoints" / "latest").write_text("step_0000002\n")
    (resumed_dir / CODEC_WEIGHTS).unlink()
    with pytest.raises(TrainingError, match="--resume latest"):
        train_vocoder(TINY, manifest, resumed_dir)
    resumed = train_vocoder(TINY, manifest, resumed_dir, resume="latest")
    assert resumed.final_step == 3
    torch.testing.assert_close(
        load_trained_codec(resumed_dir).state_dict(), load_trained_codec(tmp_path / "straight").state_dict()
    )
    assert (tmp_path / "resumed" / CODEC_WEIGHTS).is_file()

    # Checkpoints copied to another machine: the codec folder is re-created from the latest one, same graphs.
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "straight" / "checkpoints", moved / "checkpoints")
    export_from_checkpoint(moved)
    audio = np.random.default_rng(0).standard_normal((1, 1, 6400)).astype(np.float32)
    for graph, feed in (("encoder", {"audio": audio}), ("decoder", {"latents": audio.reshape(1, 50, 128)})):
        a, b = (ort.InferenceSession(str(d / f"{graph}.onnx")).run(None, feed)[0] for d in (codec_dir, moved / "codec"))
        np.testing.assert_array_equal(a, b)

    report = evaluate_codec(codec_dir, small_corpus / "heldout.jsonl", limit=2, speaker_encoder=None)
    assert report["num_clips"] == 2 and report["codec"]["kind"] == "mel"
    assert 0 < report["mel_l1"] < 10


def test_cli_user_mistakes_are_one_line_errors(
    small_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from smalltts.cli.main import main

    manifest = str(small_corpus / "manifest.jsonl")
    assert main(["train", "vocoder", "--manifest", manifest, "--out", str(tmp_path / "r"), "--steps", "-1"]) == 2
    assert "steps must be >= 0" in capsys.readouterr().err
    assert main(["train", "vocoder", "--manifest", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "r")]) == 2
    assert "manifest not found" in capsys.readouterr().err
    # The tiny preset's codec is the stand-in: nothing for a vocoder to train.
    assert main(["train", "vocoder", "--manifest", manifest, "--out", str(tmp_path / "r"), "--preset", "tiny"]) == 2
    assert "no trainable mel codec" in capsys.readouterr().err


def test_griffin_lim_export_keeps_one_copy_of_each_basis(tmp_path: Path) -> None:
    from model.export import export_codec
    from model.nn.mel_codec import DEMO_CODEC, MelCodec
    from training.vocoder import dedupe_constants, export_codec_dir

    codec = MelCodec(DEMO_CODEC).eval()
    codec.decoder.iterations = 3
    _, raw = export_codec(codec, tmp_path / "raw")  # type: ignore[arg-type]
    _, deduped = export_codec(codec, tmp_path / "deduped")  # type: ignore[arg-type]
    assert dedupe_constants(deduped) > 0
    assert deduped.stat().st_size < 0.6 * raw.stat().st_size
    latents = np.random.default_rng(0).standard_normal((1, 4, 128)).astype(np.float32)
    outputs = [ort.InferenceSession(str(p)).run(None, {"latents": latents})[0] for p in (raw, deduped)]
    np.testing.assert_array_equal(outputs[0], outputs[1])
    assert dedupe_constants(deduped) == 0
    # export_codec_dir dedupes: the default 32-iteration Griffin-Lim decoder stays under 10 MB.
    codec.decoder.iterations = 32
    export_codec_dir(codec, tmp_path / "codec", trained=False, model_id="test")
    assert (tmp_path / "codec" / "decoder.onnx").stat().st_size < 10_000_000
