"""docker/list_requirements.py: the dependency list the images install before copying the source."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "docker" / "list_requirements.py"

PYPROJECT = """
[project]
name = "demo"
dependencies = ["numpy>=1.26", "fastapi>=0.115"]

[project.optional-dependencies]
serve = ["onnxruntime>=1.20"]
gpu = ["onnxruntime-gpu>=1.20"]
train = ["torch>=2.8", "numpy>=1.26", "einops>=0.8"]
"""


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("list_requirements", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def pyproject(tmp_path: Path) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(PYPROJECT, encoding="utf-8")
    return path


def test_base_dependencies_come_first_then_each_extra_without_repeats(pyproject: Path) -> None:
    listed = load_script().list_requirements(pyproject, ["train", "serve"])
    assert listed == ["numpy>=1.26", "fastapi>=0.115", "torch>=2.8", "einops>=0.8", "onnxruntime>=1.20"]


def test_no_extra_gives_the_base_dependencies(pyproject: Path) -> None:
    assert load_script().list_requirements(pyproject, []) == ["numpy>=1.26", "fastapi>=0.115"]


def test_an_unknown_extra_is_refused_by_name(pyproject: Path) -> None:
    with pytest.raises(ValueError, match=r"extra 'srve' is not defined .*\['gpu', 'serve', 'train'\]"):
        load_script().list_requirements(pyproject, ["srve"])


def test_the_real_serving_extras_exclude_each_other_and_torch() -> None:
    list_requirements = load_script().list_requirements
    serve = list_requirements(REPO / "pyproject.toml", ["serve"])
    gpu = list_requirements(REPO / "pyproject.toml", ["gpu"])
    assert any(r.startswith("onnxruntime>") or r == "onnxruntime" for r in serve)
    assert not any(r.startswith("onnxruntime-gpu") for r in serve)
    assert any(r.startswith("onnxruntime-gpu") for r in gpu)
    assert not any(r.startswith("onnxruntime>") or r == "onnxruntime" for r in gpu)
    assert not any(r.startswith("torch") for r in serve + gpu)
    # The train extra carries what shard building and export run (onnxruntime, onnx) on its own.
    train = list_requirements(REPO / "pyproject.toml", ["train"])
    assert {"onnxruntime>=1.20", "onnx>=1.17", "torch>=2.8"} <= set(train)


def test_command_line_prints_one_requirement_per_line_and_exits_2_on_a_typo(pyproject: Path) -> None:
    ok = subprocess.run(
        [sys.executable, str(SCRIPT), str(pyproject), "gpu"], capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0
    assert ok.stdout.splitlines() == ["numpy>=1.26", "fastapi>=0.115", "onnxruntime-gpu>=1.20"]
    bad = subprocess.run(
        [sys.executable, str(SCRIPT), str(pyproject), "cuda"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert "extra 'cuda' is not defined" in bad.stderr
