"""A paid service whose synthesis never finishes, run as its own process by the crash test.

    SMALLTTS_* settings in the environment; python -m tests.service.payment.stalled_service PORT

The test kills it (SIGKILL) while a paid request is between reservation and settlement.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import uvicorn

from service.app import create_app, load_synthesizers
from service.settings import Settings


class StalledSynthesizer:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def synthesize_batch(self, requests: Sequence[Any]) -> Any:
        time.sleep(3600)
        raise RuntimeError("StalledSynthesizer: should have been killed long ago")


def main(port: int) -> None:
    settings = Settings()
    synthesizers = [StalledSynthesizer(s) for s in load_synthesizers(settings)]
    app = create_app(settings, synthesizers=synthesizers)  # type: ignore[arg-type]
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


if __name__ == "__main__":
    main(int(sys.argv[1]))
