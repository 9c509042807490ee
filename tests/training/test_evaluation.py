from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.evaluation import EvalReport, EvalRow, PairsError, read_pairs, write_report


def _wav(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_bytes(b"RIFF")  # read_pairs only checks that the files exist
    return path


def test_pairs_resolve_relative_paths_and_skip_blank_lines(tmp_path: Path) -> None:
    audio, ref = _wav(tmp_path, "a.wav"), _wav(tmp_path, "r.wav")
    (tmp_path / "abs").mkdir()
    elsewhere = _wav(tmp_path / "abs", "b.wav")  # an absolute path is kept as is
    pairs = tmp_path / "pairs.jsonl"
    rows = [{"audio": "a.wav", "text": "Hello.", "ref": "r.wav"}, {"audio": str(elsewhere), "text": "Bye."}]
    pairs.write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]) + "\n")
    first, second = read_pairs(pairs)
    assert (first.line, first.audio, first.text, first.ref) == (1, audio, "Hello.", ref)
    assert (second.line, second.audio, second.ref) == (3, elsewhere, None)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", "pairs.jsonl:1: not JSON"),
        ('{"audio": "a.wav"}\n', 'pairs.jsonl:1: a row needs "audio"'),
        ('["a.wav", "hi"]\n', 'pairs.jsonl:1: a row needs "audio"'),
        ('{"audio": "a.wav", "text": "hi", "ref": 3}\n', '"ref" must be a path'),
        ('{"audio": "missing.wav", "text": "hi"}\n', "audio file .*missing.wav not found"),
        ('{"audio": "a.wav", "text": "hi", "ref": "missing.wav"}\n', "ref file .*missing.wav not found"),
        ("\n\n", "no rows"),
    ],
)
def test_an_unusable_pairs_file_names_its_line(tmp_path: Path, content: str, message: str) -> None:
    _wav(tmp_path, "a.wav")
    (tmp_path / "pairs.jsonl").write_text(content)
    with pytest.raises(PairsError, match=message):
        read_pairs(tmp_path / "pairs.jsonl")


def test_a_missing_pairs_file_is_a_pairs_error(tmp_path: Path) -> None:
    with pytest.raises(PairsError, match="no such file"):
        read_pairs(tmp_path / "nothing.jsonl")


def test_the_report_is_a_table_and_a_json_file(tmp_path: Path) -> None:
    report = EvalReport(
        model_dir="m",
        data_dir="d",
        rows=(EvalRow("student", 8, 0.1234, 0.8), EvalRow("ground truth", 8, None, None, 0.5, 1.0)),
        notes=("tiny run",),
    )
    table = report.table().splitlines()
    assert table[0].split() == ["system", "clips", "PER", "spk", "sim", "other", "sim", "pairs", "won"]
    assert table[2].split() == ["student", "8", "0.123", "0.800", "n/a", "n/a"]
    assert table[3].split() == ["ground", "truth", "8", "n/a", "n/a", "0.500", "1.000"]
    assert table[-1] == "note: tiny run"
    path = write_report(report, tmp_path / "out" / "eval.json")
    saved = json.loads(path.read_text())
    assert saved == report.to_dict() and saved["rows"][0]["per"] == 0.1234
