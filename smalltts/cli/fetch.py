"""`smalltts fetch`: download the published ONNX weights (dmd/ and codec/) and check every file.

smalltts fetch [--repo smallbraineng/smalltts] [--dir DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from model.runtime.assets import PUBLISHED_REPO, REQUIRED_FILES, AssetError, fetch_assets, published_dir
from smalltts.cli.main import CliError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("fetch", help="download the published weights from Hugging Face")
    parser.add_argument("--repo", default=PUBLISHED_REPO, help=f"Hugging Face model repo (default {PUBLISHED_REPO})")
    parser.add_argument(
        "--dir", type=Path, default=None, metavar="DIR", help=f"target folder (default {published_dir()})"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        target = fetch_assets(args.repo, args.dir, progress=not args.quiet)
    except AssetError as exc:
        raise CliError(str(exc)) from None
    sys.stdout.write(f"{args.repo}: {len(REQUIRED_FILES)} graphs complete in {target}\n")
    return 0
