"""Print the project's requirements (base dependencies plus the named extras) one per line, for pip.

    python docker/list_requirements.py pyproject.toml serve > requirements.txt

The images install dependencies from this list before the source is copied in, so that the slow dependency
layer is rebuilt only when pyproject.toml changes, not on every code edit (the same layering `uv sync
--frozen` gives). Standard library only: it runs in a bare python image before anything is installed.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path


def list_requirements(pyproject_path: Path, extras: Sequence[str]) -> list[str]:
    """Base dependencies followed by those of each extra, in file order, without duplicates.

    Raises:
        ValueError: an extra that pyproject.toml does not define (a typo would silently install less).
    """
    project = tomllib.loads(pyproject_path.read_text(encoding="utf-8"))["project"]
    optional: dict[str, list[str]] = project.get("optional-dependencies", {})
    requirements: list[str] = list(project.get("dependencies", []))
    for extra in extras:
        if extra not in optional:
            raise ValueError(f"extra {extra!r} is not defined in {pyproject_path}; defined: {sorted(optional)}")
        requirements.extend(optional[extra])
    return list(dict.fromkeys(requirements))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", type=Path, help="path to pyproject.toml")
    parser.add_argument("extras", nargs="*", help="optional-dependency groups to add (serve, gpu, train)")
    args = parser.parse_args(argv)
    try:
        requirements = list_requirements(args.pyproject, args.extras)
    except ValueError as exc:
        print(f"list_requirements: error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write("".join(f"{line}\n" for line in requirements))
    return 0


if __name__ == "__main__":
    sys.exit(main())
