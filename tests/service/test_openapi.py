"""Schemathesis against the live app's /openapi.json: no 5xx, and every answer matches the documented schema.

Bounded so it stays a few seconds: few examples per operation, derandomized (the same cases every run),
Hypothesis deadline off (the first synthesis of a batch may be slow on a busy machine).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from model.runtime.audio import decode_reference
from model.runtime.synthesizer import Synthesizer
from service.app import create_app
from service.settings import Settings
from tests.service.support import live_server, tone_wav

MAX_EXAMPLES = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory, synthesizer: Synthesizer) -> Iterator[Any]:
    root: Path = tmp_path_factory.mktemp("openapi")
    app = create_app(
        Settings(data_dir=root / "data", frontend_dir=root / "none", builtin_voice=False, max_text_chars=200),
        synthesizers=[synthesizer],
    )
    with live_server(app) as url:
        # A stored voice, so generated voice ids sometimes hit a real one ("default" is in the examples).
        reference = decode_reference(tone_wav(1.0), synthesizer.sample_rate_hz)
        app.state.service.voices.create(reference, name="default", voice_id="default")
        yield schemathesis.openapi.from_url(f"{url}/openapi.json")


def operations(api_schema: Any) -> list[Any]:
    return [result.ok() for result in api_schema.get_all_operations()]


# Schemathesis' pytest integration (from_fixture) does not run under pytest 9, so the operations are driven
# through their Hypothesis strategies directly: one test per generation mode, every operation inside it.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_api_conforms_to_its_schema(api_schema: Any, mode: GenerationMode) -> None:
    checked = []
    statuses: list[int] = []
    for operation in operations(api_schema):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            database=None,
            phases=[Phase.explicit, Phase.generate],
        )
        def run(case: Any) -> None:
            statuses.append(case.call_and_validate(checks=CHECKS, timeout=60).status_code)

        try:
            run()
        except Unsatisfiable:
            # No invalid input exists for an operation without parameters or body (GET /health).
            if mode is GenerationMode.POSITIVE:
                raise
            continue
        checked.append(operation.label)
    assert len(checked) >= (9 if mode is GenerationMode.POSITIVE else 5), checked
    assert len(statuses) >= 3 * len(checked)  # it really sent requests
    assert any(400 <= status < 500 for status in statuses)
