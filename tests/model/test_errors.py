from __future__ import annotations

import pytest

from model.errors import InputError, ModelError
from tests.conftest import errors_defined_in


def test_every_model_error_derives_from_the_root() -> None:
    errors = errors_defined_in("model")
    names = {cls.__name__ for cls in errors}
    # The tree drawn in model/errors.py: if the walk stops finding these, it proves nothing.
    assert {"InputError", "AssetError", "ModelNotFoundError", "FetchError", "OnnxFileError", "OptimizeError"} <= names
    assert [cls.__qualname__ for cls in errors if not issubclass(cls, ModelError)] == []


def test_input_error_is_a_value_error_that_names_its_field() -> None:
    with pytest.raises(ValueError) as caught:
        raise InputError("text is empty", field="text", code="empty_text")
    error = caught.value
    assert isinstance(error, InputError)
    assert (str(error), error.field, error.code, error.status) == ("text is empty", "text", "empty_text", 422)
    assert InputError("too long", field="duration", code="too_long", status=413).status == 413
