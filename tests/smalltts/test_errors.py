from __future__ import annotations

from smalltts.errors import SmallTTSError
from tests.conftest import errors_defined_in


def test_every_smalltts_error_derives_from_the_root() -> None:
    errors = errors_defined_in("smalltts")
    # The tree drawn in smalltts/errors.py: if the walk stops finding CliError, it proves nothing.
    assert "CliError" in {cls.__name__ for cls in errors}
    assert [cls.__qualname__ for cls in errors if not issubclass(cls, SmallTTSError)] == []
