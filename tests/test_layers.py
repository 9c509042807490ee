"""The layout is the architecture: `smalltts/` (API and CLI) sits on `service/` and `training/`, which sit on
`model/` and never import each other or the front door. Checked on the source, so a lazy import inside a
function counts as much as one at the top of a file."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# package -> top-level packages of this repository it must never import
FORBIDDEN: dict[str, set[str]] = {
    "model": {"service", "training", "smalltts"},
    "service": {"training", "smalltts"},
    "training": {"service", "smalltts"},
}


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_do_not_import_across_layers(package: str) -> None:
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
    }
    assert {path: roots for path, roots in offenders.items() if roots} == {}


def test_the_checker_sees_lazy_imports(tmp_path: Path) -> None:
    source = tmp_path / "x.py"
    source.write_text("def f():\n    from training.config import X\n    import service.app as a\n")
    assert imported_roots(source) == {"training", "service"}
