"""The `smalltts` command line.

    smalltts say TEXT [--ref FILE] [--duration S] [--seed N] [--steps N] [--out FILE] [--model DIR]
    smalltts info [--model DIR] [--json]
    smalltts fetch [--repo smallbraineng/smalltts] [--dir DIR]
    smalltts batch FILE --out-dir DIR   smalltts interactive
    smalltts export ...   smalltts serve ...   smalltts bench ...   smalltts train ...   smalltts dataset ...

Each subcommand lives in its own module of this package exposing `register(subparsers)`, which adds its parser
and sets `handler`; modules are imported here by name so that adding a command touches one list. The CLI sits
above `service/`, `training/` and `model/` (which never import it), so it is the one place that may use both
the web service and the training code. User mistakes print one line (`smalltts: error: ...`) and exit with status
2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from model.errors import InputError
from smalltts.errors import SmallTTSError

# Command name -> the module that registers it. Only the chosen command's module is imported, so a light
# command (fetch, info, say) does not pay for importing the web app, web3 or torch.
COMMANDS: dict[str, str] = {
    "say": "smalltts.cli.say",
    "info": "smalltts.cli.info",
    "fetch": "smalltts.cli.fetch",
    "export": "smalltts.cli.export",
    "optimize": "smalltts.cli.optimize",
    "bench": "smalltts.cli.bench",
    "serve": "smalltts.cli.serve",
    "run": "smalltts.cli.serve",
    "bench-server": "smalltts.cli.bench_server",
    "dataset": "smalltts.cli.dataset",
    "train": "smalltts.cli.train",
    "eval": "smalltts.cli.eval",
    "pay-say": "smalltts.cli.pay_say",
    "bench-pay": "smalltts.cli.bench_pay",
    "devchain": "smalltts.cli.devchain",
    "batch": "smalltts.cli.batch",
    "interactive": "smalltts.cli.interactive",
}
COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(COMMANDS.values()))


class CliError(SmallTTSError):
    """A user-facing CLI failure: printed as one line, exit status 2."""


def import_training(*modules: str, needs: str) -> list[ModuleType]:
    """`training.<name>` for each name, imported when a command runs (torch and accelerate come with the train
    extra); a missing package is one CLI line saying what to install."""
    try:
        return [importlib.import_module(f"training.{name}") for name in modules]
    except ImportError as exc:
        raise CliError(
            f"{needs} needs the train extra ({exc.name or exc} is missing): pip install 'smalltts[train]'"
        ) from None


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for one command (its module alone is imported), or for all of them (help, unknown names)."""
    parser = argparse.ArgumentParser(prog="smalltts", description="Expressive voice-cloning text-to-speech.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = (COMMANDS[command],) if command in COMMANDS else COMMAND_MODULES
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a command not written yet; the others still work
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int | None] = args.handler
    try:
        return int(handler(args) or 0)
    except (CliError, InputError, FileNotFoundError) as exc:
        print(f"smalltts: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
