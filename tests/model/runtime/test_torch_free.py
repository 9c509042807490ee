"""The serving path never imports torch: import it all in a fresh interpreter where torch cannot load."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import importlib, importlib.abc, pkgutil, sys

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"torch is blocked in this test ({name})", name=name)
            return None

    sys.meta_path.insert(0, BlockTorch())
    roots = ["model.config", "model.schedule", "model.rope", "model.errors", "model.text", "model.runtime"]
    roots += ["service", "smalltts"]
    imported = []
    for root in roots:
        module = importlib.import_module(root)
        imported.append(root)
        if hasattr(module, "__path__"):
            for info in pkgutil.walk_packages(module.__path__, prefix=root + "."):
                importlib.import_module(info.name)
                imported.append(info.name)
    from smalltts.cli.main import build_parser
    build_parser()  # imports every CLI command module
    assert "torch" not in sys.modules
    assert "onnx" not in sys.modules  # the serving image has no onnx: `smalltts optimize` imports it when it runs
    print(len(imported), "modules", " ".join(imported))
    """
)


def test_runtime_text_service_and_api_import_without_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    imported = result.stdout.split()
    for module in (
        "model.runtime.synthesizer",
        "model.runtime.optimize",  # converting needs onnx, imported only when it runs
        "model.runtime.condition",
        "model.runtime.assets",
        "model.text.tokens",
        "smalltts.cli.main",
        "smalltts.cli.optimize",
        "smalltts.api",
    ):
        assert module in imported


def test_the_blocker_really_blocks_torch() -> None:
    # Guards the test above: with the same hook, importing torch (here through model.export) must fail.
    script = SCRIPT.split("roots = ")[0] + "import model.export\n"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode != 0 and "torch is blocked" in result.stderr
