"""Errors caused by what a user asked for, shared by the text front end, the runtime and the service.

    InputError(ValueError)      a user's input is unusable; carries the field it names and a stable code
    └── (raised as is; the service maps it to a 4xx JSON body, the CLI to one line and exit status 2)

Anything else that escapes is a bug on our side, never the user's.
"""

from __future__ import annotations


class InputError(ValueError):
    """A user mistake: `field` names the input (e.g. "text", "duration", "audio"), `code` is stable."""

    def __init__(self, message: str, *, field: str, code: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code
        self.status = status

    def __str__(self) -> str:
        return self.message
