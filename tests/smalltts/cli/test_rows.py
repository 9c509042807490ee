"""Parsing batch rows: defaults, paths, types and line numbers, without a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from smalltts.cli.rows import RowDefaults, read_rows


def test_flags_fill_what_a_row_leaves_out_and_paths_are_relative(tmp_path: Path) -> None:
    batch = tmp_path / "list" / "rows.jsonl"
    batch.parent.mkdir()
    batch.write_text('{"text": "a", "voice": "v.wav", "seed": 4}\n\n{"text": "b", "duration": 2, "out": "b.ogg"}\n')
    defaults = RowDefaults(voice=Path("default.wav"), duration=1.5, seed=9, steps=3, transcription="heard")
    rows, errors = read_rows(batch, tmp_path / "out", defaults)
    assert errors == []
    first, second = rows
    assert (first.line, first.out, first.utterance.voice) == (1, tmp_path / "out" / "0001.wav", batch.parent / "v.wav")
    assert (first.utterance.seed, first.utterance.duration, first.utterance.steps) == (4, 1.5, 3)
    assert (second.line, second.out, second.utterance.voice) == (3, tmp_path / "out" / "b.ogg", Path("default.wav"))
    assert (second.utterance.duration, second.utterance.seed, second.utterance.transcription) == (2.0, 9, "heard")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('{"text": ""}', "'text' must be a non-empty string"),
        ('{"text": "a", "duration": true}', "'duration' must be a number"),
        ('{"text": "a", "duration": "2"}', "'duration' must be a number"),
        ('{"text": "a", "voice": "x.wav", "ref": "y.wav"}', "either 'voice' or 'ref'"),
        ('{"text": "a", "out": "a.mp4"}', ".wav, .flac or .ogg"),
        ('["text"]', "must be a JSON object"),
    ],
)
def test_a_bad_row_is_an_error_on_its_line(tmp_path: Path, row: str, message: str) -> None:
    batch = tmp_path / "rows.jsonl"
    batch.write_text('{"text": "fine"}\n' + row + "\n")
    rows, errors = read_rows(batch, tmp_path, RowDefaults())
    assert [r.line for r in rows] == [1]
    assert len(errors) == 1 and errors[0].line == 2 and message in errors[0].message


def test_only_txt_and_jsonl_are_batch_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"\.txt .* or \.jsonl"):
        read_rows(tmp_path / "rows.csv", tmp_path, RowDefaults())
