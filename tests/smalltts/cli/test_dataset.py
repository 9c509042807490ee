from __future__ import annotations

import json
from pathlib import Path

import pytest

from smalltts.cli.dataset import CORPUS_KINDS
from smalltts.cli.main import main
from training import corpora
from training.dataset import read_index, read_manifest


def test_the_cli_knows_every_corpus_layout() -> None:
    assert CORPUS_KINDS == corpora.CORPUS_KINDS


def test_a_libritts_tree_builds_in_two_parts_with_two_workers(
    tmp_path: Path, corpus_dir: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A LibriTTS-R tree: SPEAKER/CHAPTER/SPEAKER_CHAPTER_UTT_SEG.wav + .normalized.txt (no plain .txt).
    clips = [source for source in read_manifest(corpus_dir / "manifest.jsonl") if source.text.strip()][:6]
    for i, clip in enumerate(clips):
        speaker = clip.speaker[3:6]  # spk000 -> "000"
        folder = tmp_path / "LibriTTS_R" / "dev-clean" / speaker / "42"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{speaker}_42_{i:06d}_000000.wav").write_bytes(clip.audio.read_bytes())
        (folder / f"{speaker}_42_{i:06d}_000000.normalized.txt").write_text(clip.text)
    out = tmp_path / "data"
    codec = str(tiny_model_dir / "codec")
    common = ["dataset", "build", "--input", str(tmp_path / "LibriTTS_R"), "--codec-dir", codec, "--out", str(out),
              "--speaker-encoder", "none", "--no-progress", "--shard-size", "2", "--num-shards", "2"]  # fmt: skip
    assert main([*common, "--shard-index", "1", "--workers", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert json.loads(lines[0])["complete"] is False and lines[1].startswith("part 1 of 2 done; 2 shards")
    assert not (out / "index.json").exists()
    assert main([*common, "--shard-index", "0"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[0])
    assert summary["complete"] and summary["num_kept"] == 6 and summary["num_skipped"] == 0
    index = read_index(out)
    assert len(index["shards"]) == 3 and set(index["speakers"]) == {"000", "001"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--manifest", "m.jsonl", "--corpus", "hf"], "--manifest reads a manifest"),
        (["--input", ".", "--num-shards", "2", "--shard-index", "2"], "0 <= --shard-index < --num-shards"),
        (["--input", ".", "--workers", "0"], "--workers must be >= 1"),
        (["--input", "empty"], "pass --corpus manifest|audio-dir|libritts-r|emilia|hf"),
        (["--input", "empty", "--corpus", "hf"], "not a saved Hugging Face dataset"),
        (
            ["--input", "empty", "--corpus", "audio-dir", "--split", "train"],
            "only a saved Hugging Face dataset (--corpus hf) takes --split",
        ),
    ],
)
def test_build_mistakes_are_one_line_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    assert main(["dataset", "build", *extra, "--codec-dir", ".", "--out", "out"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("smalltts: error:") and message in err and len(err.splitlines()) == 1
