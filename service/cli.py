"""The `smalltts` command line.

    smalltts say TEXT --ref FILE [--duration S] [--seed N] [--steps 4] [--out FILE] [--model DIR]
    smalltts info [--model DIR] [--json]
    smalltts fetch [--repo smallbraineng/smalltts] [--dir DIR]
    smalltts export ...   smalltts serve ...   smalltts bench ...

Each subcommand lives in its own module under `service/commands/` exposing `register(subparsers)`, which
adds its parser and sets `handler`; modules are imported here by name so that adding a command touches one
list. User mistakes print one line (`smalltts: error: ...`) and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from model.errors import InputError

COMMAND_MODULES: tuple[str, ...] = (
    "service.commands.say",
    "service.commands.info",
    "service.commands.fetch",
    "service.commands.export",
    "service.commands.bench",
    "service.commands.serve",
    "service.commands.bench_server",
    "service.commands.dataset",
    "service.commands.train",
    "service.commands.eval",
    "service.commands.pay_say",
    "service.commands.bench_pay",
    "service.commands.devchain",
)


class CliError(Exception):
    """A user-facing CLI failure: printed as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="smalltts", description="Expressive voice-cloning text-to-speech.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a command not written yet; the others still work
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int | None] = args.handler
    try:
        return int(handler(args) or 0)
    except (CliError, InputError, FileNotFoundError) as exc:
        print(f"smalltts: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    # `python -m service.cli` runs this file as __main__; commands raise service.cli.CliError, a different class
    # from __main__.CliError, so run the package module's main to catch them as one-line errors.
    from service.cli import main as package_main

    sys.exit(package_main())
