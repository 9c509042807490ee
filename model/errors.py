"""The root of the model package's errors, and the errors caused by what a user asked for (shared by the text
front end, the runtime and the service).

    ModelError                              root: every error the model package raises on purpose
    ├── InputError(ValueError)              a user's input is unusable; carries the field it names and a stable
    │                                       code (the service maps it to a 4xx JSON body, the CLI to one line
    │                                       and exit status 2)
    ├── runtime.assets.AssetError           model files missing or not downloadable (ModelNotFoundError,
    │                                       FetchError)
    ├── runtime.graph.OnnxFileError(ValueError)   not a complete ONNX model
    └── runtime.optimize.OptimizeError(ValueError)   a model folder that cannot be optimized

Anything else that escapes is a bug on our side, never the user's.
"""

from __future__ import annotations


class ModelError(Exception):
    """The root of the model package's errors: `except ModelError` catches every one it raises on purpose."""


class InputError(ModelError, ValueError):
    """A user mistake: `field` names the input (e.g. "text", "duration", "audio"), `code` is stable."""

    def __init__(self, message: str, *, field: str, code: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code
        self.status = status

    def __str__(self) -> str:
        return self.message
