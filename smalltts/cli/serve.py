"""`smalltts serve` and `smalltts run`: the HTTP service under uvicorn.

    smalltts serve [--host 127.0.0.1] [--port 8000] [--model DIR] [--workers N] [--log-json]
    smalltts run [--host 127.0.0.1] [--port 8000] [--model DIR]      # what `make run` calls

Every other setting comes from SMALLTTS_* variables (service/settings.py); flags override them. `run` loads
the model first and prints the URL and which model it serves (plainly saying UNTRAINED for random weights),
then serves. CPU smoke test: `smalltts run --port 8000` then `curl http://127.0.0.1:8000/health`.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError

from model.runtime.assets import AssetError, resolve_model_dir
from model.runtime.synthesizer import Synthesizer
from service.app import create_app, load_synthesizers
from service.logs import configure_logging
from service.payment.devchain.anvil import AnvilError
from service.payment.devchain.launch import describe_devchain, devchain_for_run
from service.payment.layer import check_payments
from service.settings import Settings
from service.synthesis import ServiceLimits
from smalltts.cli.first_run import fetch_on_first_run
from smalltts.cli.main import CliError
from smalltts.cli.model_option import add_model_argument


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser("serve", help="run the HTTP service (uvicorn)")
    _add_server_arguments(serve)
    serve.add_argument("--workers", type=int, default=None, metavar="N", help="inference workers per device")
    serve.set_defaults(handler=run_serve)

    run = subparsers.add_parser("run", help="print the URL and the model, then run the HTTP service")
    _add_server_arguments(run)
    run.set_defaults(handler=run_run)


def _add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="interface to bind (default $SMALLTTS_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default $SMALLTTS_PORT or 8000)")
    add_model_argument(parser)
    parser.add_argument("--log-json", action="store_true", default=None, help="JSON log lines")


def build_settings(args: argparse.Namespace, **extra: Any) -> Settings:
    """Settings from the environment, overridden by the flags that were given."""
    overrides: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "model_dir": args.model,
        "workers": getattr(args, "workers", None),
        "log_json": args.log_json,
        **extra,
    }
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CliError(f"invalid settings: {problems}") from None


def resolve_settings_model(settings: Settings) -> Settings:
    """Pins the model folder now, so a missing model is one CLI error line rather than a failed startup."""
    try:
        model_dir = resolve_model_dir(settings.model_dir)
    except AssetError as exc:
        raise CliError(str(exc)) from None
    return settings.model_copy(update={"model_dir": model_dir})


def serve(settings: Settings, synthesizers: list[Synthesizer] | None = None) -> None:
    """Runs uvicorn until interrupted; our access log replaces uvicorn's."""
    app = create_app(settings, synthesizers=synthesizers)
    check_payments(app)  # a wrong chain or an unreachable RPC: one error line, not a failed startup
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)


def require_free_port(host: str, port: int) -> None:
    """Raises CliError when something already listens on host:port.

    Checked first, so that a second `make run` says so in one line before loading the model or starting a
    second anvil. (A port taken between this check and uvicorn's bind still fails there, later and louder.)
    """
    if port == 0:  # the system picks a free one
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise CliError(f"cannot serve on {host}:{port}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as sock:
        # As uvicorn binds: a port still in TIME_WAIT after an earlier run has ended counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            url = f"http://{_url_host(host)}:{port}"
            raise CliError(
                f"port {port} is taken ({exc.strerror}); is smalltts already serving on {url}? "
                "Pick another port: --port N (PORT=N make run)"
            ) from None


def run_serve(args: argparse.Namespace) -> int:
    settings = build_settings(args)
    require_free_port(settings.host, settings.port)
    settings = resolve_settings_model(settings)
    configure_logging(json_lines=settings.log_json, level=settings.log_level)
    serve(settings)
    return 0


def run_run(args: argparse.Namespace) -> int:
    settings = build_settings(args)
    require_free_port(settings.host, settings.port)  # before the model, the dev chain or any file
    fetch_on_first_run(settings)
    settings = resolve_settings_model(settings)
    configure_logging(json_lines=settings.log_json, level=settings.log_level)
    try:
        synthesizers = load_synthesizers(settings)
    except (AssetError, ValueError) as exc:
        raise CliError(f"cannot load the model: {exc}") from None
    primary = synthesizers[0]
    try:  # the lifespan checks this too; here it is one error line before the dev chain starts
        ServiceLimits.combine(settings, primary.limits, primary.max_tokens, primary.default_steps)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    # uvicorn re-raises a captured SIGTERM after its graceful shutdown; with the default handler that would kill
    # the process before the dev chain below is stopped, so turn it into an exit that unwinds the `with`.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # Default payments (local, dev chain, no RPC given): start anvil with the test token for this run.
    try:
        with devchain_for_run(settings.payment, settings.port) as (payment, chain):
            settings = settings.model_copy(update={"payment": payment})
            announce(settings, synthesizers[0])
            if chain is not None:
                sys.stdout.write(describe_devchain(chain, f"http://{_url_host(settings.host)}:{settings.port}"))
            serve(settings, synthesizers)
    except AnvilError as exc:
        raise CliError(f"cannot start the dev chain: {exc}") from None
    return 0


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def announce(settings: Settings, synthesizer: Synthesizer) -> None:
    """The lines `make run` shows before the server starts."""
    url = f"http://{_url_host(settings.host)}:{settings.port}"
    facts = f"{synthesizer.config.preset}, {synthesizer.precision}"
    lines = [f"smalltts: model {synthesizer.model_id} ({facts}) from {synthesizer.model_dir}"]
    if not synthesizer.trained:
        lines.append("smalltts: UNTRAINED model (random weights): the audio is noise, not speech")
    lines.append(f"smalltts: serving on {url}  (API docs: {url}/docs)")
    if (Path(settings.frontend_dir) / "index.html").is_file():
        lines.append(f"smalltts: web app on {url}/")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
