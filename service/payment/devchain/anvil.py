"""Start and stop a local anvil node (npm `@foundry-rs/anvil`): the dev chain of `smalltts run` and of the tests.

The binary is started directly, never through `npx`, so that stopping our pid really stops the node (an npx
wrapper leaves a child behind). Its output goes to a file, never to an inherited pipe, so that a `| tail` on
our own output does not wait forever for anvil's end of file.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from service.errors import ServiceBaseError

REPO_ROOT = Path(__file__).resolve().parents[3]
ANVIL_IN_NODE_MODULES = Path("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
DEV_CHAIN_ID = 84532  # Base Sepolia's id, so that requirements for eip155:84532 sign and verify against it
READY_POLL_S = 0.02


class AnvilError(ServiceBaseError, RuntimeError):
    """anvil is missing, did not start, or did not answer in time."""


def find_anvil(repo_root: Path | None = None) -> Path | None:
    """The anvil binary: SMALLTTS_ANVIL, then node_modules of the repo, then PATH; None when there is none."""
    override = os.environ.get("SMALLTTS_ANVIL")
    if override:
        return Path(override)
    local = (repo_root or REPO_ROOT) / ANVIL_IN_NODE_MODULES
    if local.is_file():
        return local
    on_path = shutil.which("anvil")
    return Path(on_path) if on_path else None


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def rpc_chain_id(rpc_url: str, timeout_s: float = 1.0) -> int:
    """eth_chainId over plain HTTP (no web3), for readiness polls."""
    response = httpx.post(
        rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=timeout_s
    )
    response.raise_for_status()
    return int(response.json()["result"], 16)


@dataclass
class AnvilNode:
    """A running anvil process; `stop()` ends it (idempotent)."""

    process: subprocess.Popen[bytes]
    rpc_url: str
    chain_id: int
    log_path: Path | None

    def stop(self, timeout_s: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout_s)

    def is_running(self) -> bool:
        return self.process.poll() is None


def start_anvil(
    *,
    chain_id: int = DEV_CHAIN_ID,
    host: str = "127.0.0.1",
    port: int | None = None,
    log_path: Path | None = None,
    binary: Path | None = None,
    ready_timeout_s: float = 10.0,
) -> AnvilNode:
    """Start anvil on loopback and wait until it answers eth_chainId.

    Raises:
        AnvilError: no binary, or the node exited or stayed silent for `ready_timeout_s`.
    """
    binary = binary or find_anvil()
    if binary is None:
        raise AnvilError("anvil not found: run `npm ci` at the repository root (or set SMALLTTS_ANVIL)")
    port = port or free_port(host)
    command = [str(binary), "--host", host, "--port", str(port), "--chain-id", str(chain_id), "--silent"]
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("wb")
    else:
        log_file = None
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file if log_file is not None else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if log_file is not None else subprocess.DEVNULL,
        )
    finally:
        if log_file is not None:
            log_file.close()  # the child holds its own descriptor
    node = AnvilNode(process=process, rpc_url=f"http://{host}:{port}", chain_id=chain_id, log_path=log_path)
    deadline = time.monotonic() + ready_timeout_s
    while True:
        if process.poll() is not None:
            raise AnvilError(f"anvil exited with status {process.returncode} (log: {log_path or 'discarded'})")
        try:
            if rpc_chain_id(node.rpc_url) == chain_id:
                return node
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            node.stop()
            raise AnvilError(f"anvil did not answer on {node.rpc_url} within {ready_timeout_s} s")
        time.sleep(READY_POLL_S)
