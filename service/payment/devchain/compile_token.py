"""Compile the dev-chain test token with the pinned npm solc (solc-js, offline) and write the committed artifact.

    npm ci && python -m service.payment.devchain.compile_token

The artifact (`MockUSDC.json`: ABI, creation bytecode, compiler version and the SHA-256 of the source) is
committed, so that running the service or the tests needs no compile step; a test recompiles and compares.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

DEVCHAIN_DIR = Path(__file__).resolve().parent
SOURCE_PATH = DEVCHAIN_DIR / "MockUSDC.sol"
ARTIFACT_PATH = DEVCHAIN_DIR / "MockUSDC.json"
CONTRACT_NAME = "MockUSDC"
REPO_ROOT = DEVCHAIN_DIR.parents[2]
OPTIMIZER_RUNS = 200

# solc-js's standard-JSON entry point; the input arrives on stdin, the output leaves on stdout.
_NODE_COMPILE = """
const solc = require('solc');
let input = '';
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  process.stdout.write(JSON.stringify({version: solc.version(), output: JSON.parse(solc.compile(input))}));
});
"""


def source_sha256(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def compile_token(source_path: Path = SOURCE_PATH, repo_root: Path = REPO_ROOT) -> dict[str, Any]:
    """Compile the token and return the artifact dictionary (not written).

    Raises:
        FileNotFoundError: node or the npm solc package is missing (run `npm ci` at the repo root).
        RuntimeError: solc reported an error.
    """
    if not (repo_root / "node_modules" / "solc").is_dir():
        raise FileNotFoundError(f"npm solc is not installed under {repo_root / 'node_modules'}; run `npm ci`")
    source = source_path.read_text(encoding="utf-8")
    standard_input = {
        "language": "Solidity",
        "sources": {source_path.name: {"content": source}},
        "settings": {
            "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
        },
    }
    completed = subprocess.run(
        ["node", "-e", _NODE_COMPILE],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        cwd=repo_root,
        check=True,
    )
    result = json.loads(completed.stdout)
    errors = [e for e in result["output"].get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise RuntimeError("solc failed:\n" + "\n".join(e.get("formattedMessage", str(e)) for e in errors))
    contract = result["output"]["contracts"][source_path.name][CONTRACT_NAME]
    return {
        "contractName": CONTRACT_NAME,
        "compiler": f"solc-js {result['version']}",
        "optimizerRuns": OPTIMIZER_RUNS,
        "sourceSha256": source_sha256(source),
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
    }


def main() -> int:
    artifact = compile_token()
    ARTIFACT_PATH.write_text(json.dumps(artifact, indent=1) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {ARTIFACT_PATH} ({len(artifact['bytecode']) // 2 - 1} bytes of bytecode)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
