"""Write the service's OpenAPI schema to frontend/openapi.json, the snapshot the typed client is generated from.

    .venv/bin/python frontend/scripts/export_openapi.py           # rewrite the snapshot
    .venv/bin/python frontend/scripts/export_openapi.py --check   # exit 1 when the snapshot is stale

`npm run openapi` (in frontend/) runs the first form and then regenerates src/api/schema.d.ts. The schema
comes from `create_app` with default settings plus a paid configuration on Base Sepolia (placeholder payee
and key: building the app checks them but does no I/O; the model and the chain are only touched by the
lifespan), so this runs in a second and never touches the network.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = REPO_ROOT / "frontend" / "openapi.json"


def build_schema() -> dict[str, Any]:
    # Defaults only: a SMALLTTS_* variable in the caller's shell must not leak into the committed snapshot.
    for name in [name for name in os.environ if name.startswith("SMALLTTS_")]:
        del os.environ[name]
    sys.path.insert(0, str(REPO_ROOT))
    from service.app import create_app
    from service.payment.settings import PaymentSettings
    from service.settings import Settings

    payment = PaymentSettings(
        mode="local",
        network="base-sepolia",
        pay_to="0x000000000000000000000000000000000000dEaD",
        facilitator_private_key="0x" + "11" * 32,  # never used: nothing is settled while exporting
    )
    return create_app(Settings(payment=payment)).openapi()


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the snapshot instead of writing it")
    args = parser.parse_args(argv)
    text = render(build_schema())
    if args.check:
        if not SNAPSHOT.is_file() or SNAPSHOT.read_text(encoding="utf-8") != text:
            print(f"{SNAPSHOT} is stale: run `npm run openapi` in frontend/ and commit the result", file=sys.stderr)
            return 1
        return 0
    SNAPSHOT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
