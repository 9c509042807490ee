"""The root of the smalltts package's errors: `except SmallTTSError` catches every one it raises on purpose.

    SmallTTSError
    └── cli.main.CliError       a user-facing CLI failure: one line, exit status 2

The library API (smalltts.api) raises the model's errors (model.errors) and the standard ones it documents.
"""

from __future__ import annotations


class SmallTTSError(Exception):
    """The root of the smalltts package's errors."""
