"""The command table: every command's module registers its parser, light commands import only their own
module, and a user's mistake is one line on stderr with exit status 2."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from smalltts.cli.main import COMMAND_MODULES, COMMANDS, build_parser, main

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_every_command_in_the_table_has_a_parser() -> None:
    parser = build_parser()
    for name in COMMANDS:
        args = build_parser(name).parse_args([name, *_minimal_args(name)])
        assert args.command == name
    assert {module.rsplit(".", 1)[0] for module in COMMAND_MODULES} == {"smalltts.cli"}
    assert parser.prog == "smalltts"


def _minimal_args(name: str) -> list[str]:
    """The fewest arguments each command parses with (nothing runs)."""
    return {
        "say": ["hi"],
        "pay-say": ["hi"],
        "batch": ["lines.txt", "--out-dir", "out"],
        "dataset": ["synth", "--out", "d"],
        "train": ["teacher", "--data", "d", "--out", "r"],
        "export": ["--preset", "tiny", "--random", "--out", "o"],
        "devchain": ["start"],
        "optimize": ["m", "--out", "o", "--int8"],
        "eval": ["--pairs", "p.jsonl"],
    }.get(name, [])


def test_a_light_command_imports_only_its_own_module() -> None:
    script = (
        "import sys; from smalltts.cli.main import build_parser; build_parser('fetch'); "
        "prefixes = ('smalltts.cli.', 'service.app', 'torch', 'web3'); "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(prefixes))))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    assert "smalltts.cli.fetch" in loaded and "smalltts.cli.serve" not in loaded
    assert not any(name.startswith(("torch", "web3", "service.app")) for name in loaded)


def test_user_mistakes_are_one_line_with_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["say", "hi", "--ref", str(tmp_path / "missing.wav")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("smalltts: error: ") and err.count("\n") == 1
    with pytest.raises(SystemExit) as exited:
        main(["no-such-command"])
    assert exited.value.code == 2


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_each_command_module_exposes_register(module: str) -> None:
    assert callable(importlib.import_module(module).register)
